"""The question ``stacks recommend`` answers: my model, my traffic, my SLO — validated once.

A ``Query`` holds the model (as the stack file's ``model`` section would: a catalog alias, or an
``hfId`` with its local ``configFile``, or the section of an existing stack file), the workload as
request shapes, the traffic (a request rate, a number of closed-loop clients, or neither: then the
ranking is by cost per token at the best load that meets the SLO), the SLO (the project's one
grammar, ``loadtest/slo.py``) and the user's limits (server, region, provisioning, precisions).

Bad input raises ``QueryError`` naming the flag and the fix; nothing is searched before the whole
query is valid.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.config import LengthSpec, LoadConfig, parse_length
from loadtest.errors import BadInput
from loadtest.slo import SloError, SloTerm, parse_terms
from stacks.catalog import load_catalog
from stacks.config import PROJECT
from stacks.errors import SpecErrors, did_you_mean
from stacks.hf_config import ConfigFileError, read_architecture
from stacks.loader import resolve_stack_arg, spec_from_config, stack_files
from stacks.precision import PRECISIONS
from stacks.stack_yaml import read_stack_document

DEFAULT_SLO = "ttft_p99=2s,tpot_p50=100ms"
SHAPES_DRAWN = 256  # request shapes drawn from a length distribution or a dataset (seeded)
DEFAULT_PROJECT = "my-gcp-project"


class QueryError(ValueError):
    """A bad query: ``flag`` is the option as typed, ``fix`` what to write instead."""

    def __init__(self, flag: str, message: str, fix: str):
        super().__init__(f"{flag}: {message} (fix: {fix})")
        self.flag, self.message, self.fix = flag, message, fix


@dataclass(frozen=True)
class Query:
    model: dict[str, Any]  # the stack file's `gke-llm-bench:model` section
    model_label: str
    shapes: tuple[tuple[int, int], ...]  # (input, output) tokens per request, cycled
    workload_label: str
    slo: tuple[SloTerm, ...]
    rate: float | None = None  # requests per second, all replicas together
    concurrency: int | None = None  # closed-loop clients, all replicas together
    servers: tuple[str, ...] = ()  # empty: every server kind
    precisions: tuple[str, ...] = ()  # empty: every weight precision
    project: str = DEFAULT_PROJECT
    region: str = "us-central1"
    zone: str | None = None
    spot: bool = False
    flex_start: bool = True  # shapes sold only as spot / flex-start are offered through flex-start
    weights_share_max: float = 0.8  # the guide's 80 %; the user may allow more (sizing.weightsShareMax)
    max_replicas: int = 64
    top: int = 5
    validated_only: bool = False  # only setups whose engine x chip has a published measurement behind its band
    baseline: tuple[str, dict[str, Any]] | None = None  # the stack the query started from: (name, flat config)

    @property
    def mean_input(self) -> float:
        return sum(i for i, _ in self.shapes) / len(self.shapes)

    @property
    def mean_output(self) -> float:
        return sum(o for _, o in self.shapes) / len(self.shapes)

    @property
    def max_total(self) -> int:
        return max(i + o for i, o in self.shapes)

    @property
    def traffic_label(self) -> str:
        if self.rate is not None:
            return f"{self.rate:g} req/s"
        if self.concurrency is not None:
            return f"{self.concurrency} concurrent clients"
        return "best load meeting the SLO (ranked by $ per million output tokens)"

    @property
    def input_heavy(self) -> bool:
        """The guide's recommendation 4 applies: prompts dominate the work (at least 4 input tokens per output)."""
        return self.mean_input >= 4 * self.mean_output


@dataclass(frozen=True)
class ModelChoice:
    """What ``--model`` named: the stack file's model section, and what the query needs to know of it."""

    section: dict[str, Any]
    label: str
    max_context: int
    starting_stack: str | None = None  # the stack (name) it was taken from: the label says so
    gcp: dict[str, Any] = field(default_factory=dict)  # that stack's gcp:* keys
    config: dict[str, Any] | None = None  # that stack's whole config: sized like a candidate, shown beside the picks


def model_section(model: str, config_file: str | None) -> ModelChoice:
    """``--model``: a catalog alias, an ``org/name`` with ``--config-file``, or a stack (name or file)
    whose model section is taken."""
    catalog = load_catalog()
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise QueryError("--config-file", f"{config_file} does not exist",
                             "give the model's config.json (huggingface-cli download <hfId> config.json)")
        if "/" not in model:
            raise QueryError("--model", f'"{model}" is not a Hugging Face id', "with --config-file, give org/name")
        try:
            arch = read_architecture(json.loads(path.read_text(encoding="utf-8")), model).model
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise QueryError("--config-file", f"{config_file} is not a readable JSON file ({exc})",
                             "save the model's config.json as it is on the Hub") from None
        except ConfigFileError as exc:
            raise QueryError("--config-file", f"{config_file}: {exc.key} {exc.message}",
                             "check the file against the model's config.json on the Hub") from None
        return ModelChoice({"hfId": model, "configFile": str(path.resolve())}, model, arch.max_context)
    if model in catalog.models:
        return ModelChoice({"name": model}, model, catalog.models[model].max_context)
    by_id = catalog.model_by_hf_id(model)
    if by_id is not None:
        return ModelChoice({"hfId": model}, model, by_id.max_context)
    if model.endswith((".yaml", ".yml")) or model in stack_files():
        try:
            name, path = resolve_stack_arg(model)
            flat = read_stack_document(Path(path))
            spec = spec_from_config(flat, name, source=str(path))
        except SpecErrors as exc:
            raise QueryError("--model", f"the stack file is not valid: {exc.render()}",
                             "fix the stack file, or name a catalog model") from None
        section = dict(flat[f"{PROJECT}:model"])
        if "configFile" in section and not Path(section["configFile"]).is_absolute():
            section["configFile"] = str((Path(path).parent / section["configFile"]).resolve())
        gcp = {k.split(":", 1)[1]: v for k, v in flat.items() if str(k).startswith("gcp:")}
        return ModelChoice(section, f"{spec.model.alias} (from {name})", spec.model.max_context, name, gcp,
                           {**flat, f"{PROJECT}:model": section})
    raise QueryError("--model", f'unknown model "{model}"{did_you_mean(model, catalog.models)}',
                     f"use a catalog alias ({', '.join(sorted(catalog.models)[:8])}, ...: `python -m stacks list`), "
                     "an org/name with --config-file, or a stack file")


def _lengths(spec: LengthSpec, rng: random.Random, n: int) -> list[int]:
    return [spec.lo if spec.fixed else rng.randint(spec.lo, spec.hi) for _ in range(n)]


def workload_shapes(workload: str | None, input_len: str | None, output_len: str | None,
                    dataset: str | None, seed: int = 0) -> tuple[tuple[tuple[int, int], ...], str]:
    """The request shapes: ``--workload IN:OUT`` (fixed), ``--input-len/--output-len`` (the load
    tester's grammar: ``128`` or a uniform ``64:256``), or ``--dataset`` (ShareGPT, the load tester's
    filters; lengths estimated at 4 characters per token, as it does without a tokenizer)."""
    given = [f for f, v in (("--workload", workload), ("--input-len", input_len or output_len),
                            ("--dataset", dataset)) if v]
    if len(given) > 1 and not (given == ["--input-len", "--dataset"] and not input_len):
        raise QueryError(given[1], f"given together with {given[0]}",
                         "describe the requests one way: --workload IN:OUT, --input-len/--output-len, or --dataset")
    try:
        if dataset:
            from loadtest.workloads import sharegpt

            cfg = LoadConfig(mode="rate", levels=[1.0], seed=seed)
            out = parse_length("--output-len", output_len).lo if output_len else None
            w = asyncio.run(sharegpt(cfg, dataset, SHAPES_DRAWN, None, output_len=out))
            shapes = tuple((int(p.input_tokens or p.input_estimate or 1), int(p.output_len)) for p in w.prompts)
            return shapes, f"{Path(dataset).name} ({len(shapes)} conversations, lengths estimated)"
        if workload:
            parts = workload.split(":")
            if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
                raise QueryError("--workload", f'"{workload}" is not INPUT:OUTPUT tokens',
                                 "write e.g. --workload 1024:128 (or --input-len 512:2048 --output-len 128 for ranges)")
            i, o = (int(p) for p in parts)
            return ((i, o),), f"{i} in / {o} out tokens"
        ins = parse_length("--input-len", input_len or "128")
        outs = parse_length("--output-len", output_len or "64")
    except BadInput as exc:
        raise QueryError(str(exc.message).split(" ", 1)[0], exc.message, exc.fix) from None
    if ins.fixed and outs.fixed:
        return ((ins.lo, outs.lo),), f"{ins.lo} in / {outs.lo} out tokens"
    rng = random.Random(seed)
    shapes = tuple(zip(_lengths(ins, rng, SHAPES_DRAWN), _lengths(outs, rng, SHAPES_DRAWN), strict=True))
    return shapes, f"{ins} in / {outs} out tokens (uniform, {SHAPES_DRAWN} draws, seed {seed})"


def parse_slo(text: str) -> tuple[SloTerm, ...]:
    try:
        terms = parse_terms(text)
    except SloError as exc:
        raise QueryError("--slo", exc.message, exc.fix) from None
    latency = tuple(t for t in terms if t.metric != "error_rate")
    if not latency:
        raise QueryError("--slo", "names no latency term", f"give at least one, e.g. --slo {DEFAULT_SLO}")
    return latency


def check_choices(flag: str, given: tuple[str, ...], known: list[str]) -> tuple[str, ...]:
    for value in given:
        if value not in known:
            raise QueryError(flag, f'unknown value "{value}"{did_you_mean(value, known)}',
                             f"use one of: {', '.join(known)}")
    return given


def servers_and_precisions(servers: str | None, precisions: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    catalog = load_catalog()
    s = tuple(x.strip() for x in (servers or "").split(",") if x.strip())
    p = tuple(x.strip() for x in (precisions or "").split(",") if x.strip())
    return check_choices("--server", s, list(catalog.servers)), check_choices("--precision", p, list(PRECISIONS))
