"""Writes result directories in the documented format (docs/results-format.md, v1) from a stated formula.

The latency model is linear in the load level L (batch size N or request rate R):

    ttft(L) = ttft0 + ttft_slope · L          tpot(L) = tpot0 + tpot_slope · L
    e2e(L)  = ttft(L) + (output_len − 1) · tpot(L)

Every request of a stage has exactly these latencies, so every percentile equals the formula value.
A batch stage of level N runs ``waves`` closed-loop waves of N requests back to back, so its window
is waves · e2e(N) and its output throughput N · output_len / e2e(N). A rate stage schedules its
requests at k / R and its window is (n − 1) / R + e2e(R). Tests assert against these formulas.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacks.loader import load_stack_file, stack_files


@dataclass(frozen=True)
class Curve:
    ttft0: float = 0.05
    ttft_slope: float = 0.002
    tpot0: float = 0.02
    tpot_slope: float = 0.0005

    def ttft(self, level: float) -> float:
        return self.ttft0 + self.ttft_slope * level

    def tpot(self, level: float) -> float:
        return self.tpot0 + self.tpot_slope * level

    def e2e(self, level: float, output_len: int) -> float:
        return self.ttft(level) + (output_len - 1) * self.tpot(level)


def spec_summary(stack: str, usd_per_hour: float | None = None) -> dict[str, Any]:
    """The real spec summary of a committed stack, optionally with a stated price."""
    spec = load_stack_file(stack_files()[stack], stack).summary()
    if usd_per_hour is not None:
        spec["cost"]["usdPerHour"] = usd_per_hour
        spec["cost"]["usdPerHourAllIn"] = usd_per_hour  # a stated price is the whole price: no cluster cost
        spec["cost"]["clusterUsdPerHour"] = 0.0
        spec["cost"]["usdPerReplicaHour"] = usd_per_hour
    return spec


def write_run(
    root: Path, stack: str, *, curve: Curve = Curve(), mode: str = "batch",
    levels: tuple[float, ...] = (16, 32, 64, 128, 256), input_len: int = 128, output_len: int = 64,
    waves: int = 2, requests_per_rate_level: int = 20, usd_per_hour: float | None = None, modelled: bool = True,
    with_summary: bool = True, truncate_last_line: bool = False, run_id: str | None = None,
    spec: dict[str, Any] | None = None, format_version: int = 1, errors: dict[float, int] | None = None,
    warmup: int = 0, max_running: int = 256, scrape: bool = True, predicted: Curve | None = None,
) -> Path:
    """Write one run directory under ``root/<stack>/<run_id>`` and return its path.

    ``predicted``: also write ``predicted.jsonl``, the same requests timed by this curve (the model's
    replay), with no errors (the model serves every request).
    """
    run_id = run_id or f"20260101T000000Z-{mode}-{input_len}-{output_len}"
    path = root / stack / run_id
    path.mkdir(parents=True, exist_ok=True)
    spec = spec or spec_summary(stack, usd_per_hour)
    config = {"mode": mode, "levels": list(levels), "inputLen": input_len, "outputLen": output_len,
              "arrival": "constant" if mode == "rate" else "closed"}
    run_doc = {"formatVersion": format_version, "runId": run_id, "stack": stack,
               "target": "sim" if modelled else "gke", "modelled": modelled, "toolVersion": "test",
               "config": config, "outputs": {"stack": stack, "spec": spec}, "spec": spec}
    (path / "run.json").write_text(json.dumps(run_doc))
    lines: list[str] = []
    pred_lines: list[str] = []
    metrics: list[str] = []
    stages: list[dict[str, Any]] = []
    t0, i = 0.0, 0
    errors = errors or {}
    for k, level in enumerate(levels):
        sid = f"s{k}"
        ttft, tpot = curve.ttft(level), curve.tpot(level)
        e2e = curve.e2e(level, output_len)
        for _ in range(warmup):
            lines.append(json.dumps(_record(sid, i, t0, t0, ttft, tpot, input_len, output_len, None, True)))
            i += 1
        if mode == "batch":
            n = int(level) * waves
            sched = [t0 + (j // int(level)) * e2e for j in range(n)]
            window = waves * e2e
        else:
            n = requests_per_rate_level
            sched = [t0 + j / level for j in range(n)]
            window = (n - 1) / level + e2e
        n_err = errors.get(level, 0)
        for j, s in enumerate(sched):
            err = "http_5xx" if j < n_err else None
            lines.append(json.dumps(_record(sid, i, s, s, ttft, tpot, input_len, output_len, err, False)))
            if predicted is not None:  # a closed loop's next wave starts when the model's first one ends
                ps = t0 + (j // int(level)) * predicted.e2e(level, output_len) if mode == "batch" else s
                pred_lines.append(json.dumps(_record(sid, i, ps, ps, predicted.ttft(level), predicted.tpot(level),
                                                     input_len, output_len, None, False)))
            i += 1
        ok = n - n_err
        stages.append({
            "id": sid, "mode": mode, "level": level, "arrival": config["arrival"], "duration_s": window,
            "requests": n, "completed": ok, "errors": {"http_5xx": n_err} if n_err else {},
            "requestedRate": level if mode == "rate" else None, "outputTokensPerS": ok * output_len / window,
            "ttft": _dist(ttft), "tpot": _dist(tpot), "e2e": _dist(e2e), "clientBottleneck": False,
            "serverMetrics": {"runningMax": float(min(level, max_running)), "waitingMax": max(0.0, level - max_running),
                              "preemptions": 2.0 if level > max_running else 0.0},
        })
        for step in range(3):
            running = min(level, max_running) if mode == "batch" else level * e2e
            metrics.append(json.dumps({"t": t0 + step * window / 3, "stage": sid, "samples": {
                'vllm:num_requests_running{model_name="m"}': running,
                'vllm:num_requests_waiting{model_name="m"}': max(0.0, level - max_running),
                'vllm:kv_cache_usage_perc{model_name="m"}': min(1.0, running / max_running),
                'vllm:num_preemptions_total{model_name="m"}': float(step if level > max_running else 0),
                'vllm:time_to_first_token_seconds_bucket{le="0.1"}': 1.0}}))
        t0 += window + 1.0
    text = "\n".join(lines) + "\n"
    if truncate_last_line:
        text = text.rstrip("\n")
        text = text[: len(text) - 15]
    (path / "requests.jsonl").write_text(text)
    if predicted is not None:
        (path / "predicted.jsonl").write_text("\n".join(pred_lines) + "\n")
    if scrape:
        (path / "server_metrics.jsonl").write_text("\n".join(metrics) + "\n")
    if with_summary:
        summary = {"formatVersion": format_version, "runId": run_id, "stack": stack, "modelled": modelled,
                   "partial": False, "stages": stages, "config": config, "spec": spec}
        (path / "summary.json").write_text(json.dumps(summary))
    return path


def _dist(v: float) -> dict[str, float]:
    return {k: v for k in ("mean", "p50", "p90", "p95", "p99", "max")}


def _record(stage: str, i: int, sched: float, sent: float, ttft: float, tpot: float, n_in: int, n_out: int,
            error: str | None, warmup: bool) -> dict[str, Any]:
    first = sent + ttft
    end = first + (n_out - 1) * tpot
    if error:
        return {"stage": stage, "i": i, "scheduled": sched, "sent": sent, "first": None, "end": sent + ttft,
                "chunks": [], "inputTokens": n_in, "outputTokens": 0, "tokenSource": "usage", "status": 500,
                "error": error, "warmup": warmup}
    chunks = [[first + k * tpot, 1] for k in range(n_out)]
    return {"stage": stage, "i": i, "scheduled": sched, "sent": sent, "first": first, "end": end, "chunks": chunks,
            "inputTokens": n_in, "outputTokens": n_out, "tokenSource": "usage", "status": 200, "error": None,
            "warmup": warmup}
