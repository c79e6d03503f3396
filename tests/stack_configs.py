"""A valid base stack config and a writer for variations of it, shared by the stacks and components tests.

Each test states only the keys it changes, so what a test is about is visible in the test.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

BASE: dict[str, Any] = {
    "gcp:project": "test-project",
    "gcp:region": "us-central1",
    "gcp:zone": "us-central1-a",
    "gke-llm-bench:accelerator": {"machineType": "g2-standard-8"},
    "gke-llm-bench:model": {"name": "llama-2-7b"},
    "gke-llm-bench:precision": "bf16",
    "gke-llm-bench:server": {"kind": "vllm", "maxModelLen": 4096},
}


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Apply ``changes`` to a copy of ``base``: nested dicts merge, ``None`` deletes a key."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def write_stack_file(
    directory: Path, changes: dict[str, Any] | None = None, name: str = "t", raw: str | None = None
) -> Path:
    """Write ``Pulumi.<name>.yaml`` into ``directory`` from BASE plus ``changes`` (or ``raw`` text)."""
    path = directory / f"Pulumi.{name}.yaml"
    if raw is not None:
        path.write_text(raw)
    else:
        path.write_text(yaml.safe_dump({"config": merge(BASE, changes or {})}, sort_keys=False))
    return path
