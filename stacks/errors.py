"""Errors that name the config key as written in the stack file, and the fix.

Validation collects every problem before reporting (a user fixing a stack file should see them
all at once), so errors are values first and an exception only at the end.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SpecError:
    key: str  # as written in the file, e.g. "gke-llm-bench:accelerator.gpu"
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.key}: {self.message}"
        return f"{text}\n    fix: {self.fix}" if self.fix else text


class SpecErrors(Exception):
    """One or more problems with a stack file; ``str()`` lists all of them."""

    def __init__(self, source: str, errors: Sequence[SpecError]):
        self.source = source
        self.errors = list(errors)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.source}: {len(self.errors)} error(s)"]
        lines += [f"  - {e}".replace("\n", "\n  ") for e in self.errors]
        return "\n".join(lines)


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """' (did you mean "x"?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(str(value).lower(), [c.lower() for c in choices], n=1, cutoff=0.5)
    if not close:
        return ""
    original = next(c for c in choices if c.lower() == close[0])
    return f' (did you mean "{original}"?)'


def one_of(value: str, choices: Iterable[str]) -> str:
    """Fix text listing valid choices, nearest first when there is a near match."""
    choices = list(choices)
    hint = did_you_mean(value, choices)
    shown = ", ".join(choices) if len(choices) <= 12 else ", ".join(choices[:12]) + ", ..."
    return f"use one of: {shown}{hint}"
