"""Shared fixtures: specs for every dialect, built through the project's own stack resolution."""

from __future__ import annotations

import dataclasses

import pytest

from loadtest.simulator.calibration import build_spec
from stacks.loader import load_stack_file, stack_files
from stacks.spec import StackSpec


@pytest.fixture(scope="session")
def stacks() -> dict[str, StackSpec]:
    return {name: load_stack_file(path) for name, path in stack_files().items()}


@pytest.fixture(scope="session")
def spec_7b_a3(stacks: dict[str, StackSpec]) -> StackSpec:
    return stacks["llama2-7b-a3"]


@pytest.fixture(scope="session")
def dialect_specs() -> dict[str, StackSpec]:
    return {
        "openai": build_spec("a3-highgpu-1g", "llama-2-7b", "bf16", "vllm", name="sim-vllm"),
        "tgi": build_spec("g2-standard-8", "llama-2-7b", "bf16", "tgi", name="sim-tgi"),
        "triton": build_spec("a2-ultragpu-1g", "llama-2-7b", "bf16", "triton-trtllm", name="sim-triton"),
        "jetstream": build_spec("ct5lp-hightpu-4t", "gemma-7b", "bf16", "jetstream", name="sim-jetstream"),
    }


def with_kv_blocks(spec: StackSpec, blocks: int) -> StackSpec:
    """The same stack with a smaller KV cache (to force preemption in a few steps)."""
    sizing = dataclasses.replace(spec.sizing, kv_blocks=blocks, kv_tokens=blocks * 16)
    return dataclasses.replace(spec, sizing=sizing)
