"""Errors the analysis raises for bad input: each names the file or option at fault and the fix."""

from __future__ import annotations


class AnalysisError(Exception):
    """Bad input (a results directory, an option): the CLI prints it and exits 2, without a traceback."""

    def __init__(self, where: str, message: str, fix: str = ""):
        self.where = where
        self.message = message
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}"
        return f"{text}\n  fix: {self.fix}" if self.fix else text
