"""One helper for every component test: run the real ``__main__.py`` under mocks, once per stack.

``offline.program_run.run_stack_file`` resets the root stack between runs, registers with
``preview=False`` and returns only after the program's RPCs and outputs have drained, so every
assertion sees the final registrations. Runs are cached for the session (one per committed stack).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from offline.program_run import ProgramRun, run_stack_file
from stacks.loader import stack_files

STACKS = stack_files()
_RUNS: dict[str, ProgramRun] = {}


def program(name: str, path: Path | None = None) -> ProgramRun:
    """The program's registrations for a committed stack (or a stack file at ``path``)."""
    key = str(path) if path else name
    if key not in _RUNS:
        _RUNS[key] = run_stack_file(path or STACKS[name], name)
    return _RUNS[key]


@pytest.fixture(params=sorted(STACKS))
def run(request) -> ProgramRun:
    return program(request.param)
