"""Errors the command line turns into exit codes (docs: README "Load testing")."""

from __future__ import annotations

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130


class LoadTestError(Exception):
    """A problem the user can fix; ``exit_code`` says which kind (2 bad input, 3 unreachable)."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, fix: str = ""):
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.fix}" if self.fix else self.message


class BadInput(LoadTestError):
    exit_code = EXIT_BAD_INPUT


class Unreachable(LoadTestError):
    exit_code = EXIT_UNREACHABLE
