"""The picks as ready stack files, and the commands that would confirm them on a real cluster.

Each file is the candidate's own config (the one the search resolved), sized for the traffic
(node count, replicas, max batch), with a comment block saying why it was chosen and the prediction
a load test must confirm. Before it is written, it is read back through ``spec_from_config`` under
its real name and path, so ``stacks check`` accepts every file this writes.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import yaml

from stacks.config import PROJECT
from stacks.loader import spec_from_config
from stacks.stack_yaml import read_stack_document

from .evaluate import fmt_s
from .explain import binding_term, verdict, why
from .search import Pick, Result


def stack_name(pick: Pick) -> str:
    """``llama-3-1-8b-g2-standard-4-vllm-fp8``: model, machine, server, precision (+ KV, TP when not default)."""
    s = pick.candidate.spec
    parts = [s.model.alias, s.machine.name, s.server.name, s.precision.name]
    if s.kv_cache_dtype != "auto":
        parts.append(f"kv{s.kv_cache_dtype}")
    if s.tensor_parallel > 1:
        parts.append(f"tp{s.tensor_parallel}")
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")


def sized_config(pick: Pick, out_dir: Path | None = None) -> dict[str, Any]:
    """The candidate's flat config with the pick's nodes, replicas and max batch."""
    flat = copy.deepcopy(pick.candidate.config)
    flat[f"{PROJECT}:accelerator"]["nodeCount"] = pick.nodes
    server = flat[f"{PROJECT}:server"]
    if pick.replicas > 1:
        server["replicas"] = pick.replicas
    else:
        server.pop("replicas", None)
    if pick.stage.mode == "batch":  # clients per replica: the server's batch is capped there (rule 5)
        server["maxBatch"] = int(pick.stage.level)
    model = flat[f"{PROJECT}:model"]
    if out_dir is not None and "configFile" in model:
        model["configFile"] = os.path.relpath(model["configFile"], out_dir.resolve())
    return flat


def load_test_command(pick: Pick, result: Result, name: str) -> str:
    """``loadtest run`` around the predicted operating point: half, at, and one and a half times it."""
    q = result.query
    slo = ",".join(f"{t.key}={_duration(t.limit)}" for t in q.slo)
    shapes = _lengths(q.shapes)
    if q.rate is not None:
        levels = ",".join(f"{q.rate * f:g}" for f in (0.5, 1.0, 1.5))
        mode = f"--mode rate --arrival poisson --levels {levels}"
    else:
        per = int(pick.stage.level)
        total = q.concurrency or per * pick.replicas
        levels = ",".join(str(max(1, round(total * f))) for f in (0.5, 1.0, 1.5))
        mode = f"--mode batch --levels {levels}"
    requests = int(pick.stage.summary["requests"]) * pick.replicas  # as many as the prediction had
    return (f"python -m loadtest run --stack {name} {mode} {shapes} --requests-per-level {requests} "
            f"--slo {slo}")


def _duration(seconds: float) -> str:
    return f"{seconds:g}s" if seconds >= 1 else f"{seconds * 1e3:g}ms"


def _lengths(shapes: tuple[tuple[int, int], ...]) -> str:
    ins = sorted({i for i, _ in shapes})
    outs = sorted({o for _, o in shapes})
    return (f"--input-len {ins[0]}" + (f":{ins[-1]}" if len(ins) > 1 else "")
            + f" --output-len {outs[0]}" + (f":{outs[-1]}" if len(outs) > 1 else ""))


def header(pick: Pick, result: Result, rank: int, name: str) -> list[str]:
    q = result.query
    slo = ", ".join(str(t) for t in q.slo)
    lines = [f"Recommended by `python -m stacks recommend`, rank {rank} of {len(result.picks)}, for {q.model_label}:",
             f"{q.workload_label}, {q.traffic_label}, SLO {slo}.", "Why:"]
    lines += [f"  - {w}" for w in why(pick, result)]
    values = ", ".join(f"{t.key} {fmt_s(pick.stage.values.get(t.key))}" for t in q.slo)
    lines += [f"Prediction to confirm: {values} ({binding_term(pick, q.slo).key} binds); "
              f"{pick.output_tok_s:,.0f} output tokens/s over {pick.replicas} replica(s); "
              f"${pick.usd_per_hour:.2f}/h all-in, ${pick.usd_per_m_output:.3f} per million output tokens.",
              f"Verdict: {verdict(pick, q.slo)}.",
              "Confirm on a real cluster:",
              f"  pulumi up -s {name}",
              f"  {load_test_command(pick, result, name)}"]
    return lines


def render(pick: Pick, result: Result, rank: int, name: str, out_dir: Path | None = None) -> str:
    comment = "\n".join(("# " + line).rstrip() for line in header(pick, result, rank, name))
    body = yaml.safe_dump({"config": sized_config(pick, out_dir)}, sort_keys=False, default_flow_style=False,
                          allow_unicode=True)
    return f"{comment}\n{body}"


def write_stack_files(result: Result, out_dir: Path) -> list[Path]:
    """``Pulumi.<name>.yaml`` per pick in ``out_dir``; each is validated as written before the next."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for rank, pick in enumerate(result.picks, 1):
        name = stack_name(pick)
        path = out_dir / f"Pulumi.{name}.yaml"
        text = render(pick, result, rank, name, out_dir)
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(text)
        try:
            spec_from_config(read_stack_document(tmp), name, source=str(tmp))
        except Exception:
            tmp.unlink()
            raise
        tmp.replace(path)
        written.append(path)
    return written
