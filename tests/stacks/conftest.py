"""Builders for stack files: each test states only the keys it changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.stack_configs import write_stack_file


@pytest.fixture
def stack_file(tmp_path: Path):
    """Write ``Pulumi.<name>.yaml`` from BASE plus changes; returns its path."""

    def write(changes: dict[str, Any] | None = None, name: str = "t", raw: str | None = None) -> Path:
        return write_stack_file(tmp_path, changes, name, raw)

    return write
