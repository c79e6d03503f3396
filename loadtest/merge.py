"""``python -m loadtest merge SRC``: the pods' shares of one run become one run directory.

SRC is the run's prefix in the bucket (``gs://<bucket>/<run>``) or a local directory with the same
layout (``<index>/<file>/<seq>``, written by ``loadtest.bucket``). The result is an ordinary run
directory in the documented format (docs/results-format.md), so ``analysis compare`` reads it like
any other, plus ``pods.json``: what each pod did.

- Times: each pod's records are moved onto pod 0's clock by the difference of their wall-clock
  origins (``clockOrigin``), so the merged stage is one timeline.
- Stages: each is summarized again from the union of the pods' records with the one summarizer
  (``aggregate.summarize_stage``) and the run's SLO; pod 0 scraped the server, so its server
  metrics stand for the stage. A request number seen twice means the shares overlapped: refused.
  With the stack file at hand, each merged stage is replayed on the performance model
  (``model_check``), which no pod could do with its share alone.
- The audit, per pod: requests sent and measured, errors, dispatch delay p50/p99 (how late the pod
  sent against the shared schedule), how late it started stage 0, its clock's offset from pod 0's
  origin and its kernel's estimated clock error; per stage, whether the union of the pods' request
  numbers is the schedule's full sequence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .aggregate import stats, summarize_stage
from .bench import RunState
from .bucket import pod_dirs, read_pod
from .errors import BadInput
from .model_check import check_stage
from .records import RequestRecord
from .results import PREDICTED_FILE, REQUESTS_FILE, ResultsWriter
from .targets import stack_spec as load_stack_spec

AUDIT_FILE = "pods.json"


@dataclass
class PodShare:
    index: int
    run: dict[str, Any]
    summary: dict[str, Any] | None
    records: list[RequestRecord] = field(default_factory=list)
    scrapes: list[dict[str, Any]] = field(default_factory=list)
    shift: float = 0.0  # seconds added to this pod's times to put them on pod 0's clock


def _lines(raw: bytes | None) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (raw or b"").splitlines() if line.strip()]


def _shifted(rec: RequestRecord, shift: float) -> RequestRecord:
    if shift:
        rec.scheduled += shift
        rec.sent = None if rec.sent is None else rec.sent + shift
        rec.first = None if rec.first is None else rec.first + shift
        rec.end = None if rec.end is None else rec.end + shift
        rec.chunks = [(t + shift, n) for t, n in rec.chunks]
    return rec


def load_shares(src: str, partial: bool = False) -> list[PodShare]:
    dirs = pod_dirs(src)
    if 0 not in dirs:
        raise BadInput(f"{src}: no pod 0 here (found {sorted(dirs) or 'nothing'})",
                       "give the run's prefix, e.g. gs://<bucket>/<run-id>, once the Job has started")
    files = {k: read_pod(url) for k, url in sorted(dirs.items())}
    if "run.json" not in files[0]:
        raise BadInput(f"{src}/0: no run.json", "the pod has not started its run yet; wait for the Job")
    run0 = json.loads(files[0]["run.json"])
    pod = run0.get("pod")
    if not pod:
        raise BadInput(f"{src}/0/run.json is not a pod's share (no \"pod\" field)",
                       "merge the prefix the load generator's pods wrote (run with --pods)")
    count = int(pod["count"])
    missing = [k for k in range(count) if k not in files or "run.json" not in files[k]]
    if missing and not partial:
        raise BadInput(f"{src}: pod(s) {missing} of {count} have written nothing",
                       "wait for the Job to finish (kubectl get job), or merge what is there with --partial")
    shares = []
    for k in range(count):
        if k in missing:
            continue
        run = json.loads(files[k]["run.json"])
        if run.get("runId") != run0.get("runId") or (run.get("pod") or {}).get("count") != count:
            raise BadInput(f"{src}/{k}: pod {k} belongs to run {run.get('runId')!r}, not {run0.get('runId')!r}",
                           "each run needs its own prefix; check the Job's --run-id")
        summary = json.loads(files[k]["summary.json"]) if "summary.json" in files[k] else None
        share = PodShare(k, run, summary, shift=float(run["clockOrigin"]) - float(run0["clockOrigin"]))
        share.records = [_shifted(RequestRecord.from_dict(d), share.shift) for d in _lines(files[k].get(REQUESTS_FILE))]
        share.scrapes = _lines(files[k].get("server_metrics.jsonl"))
        shares.append(share)
    return shares


def _stage_meta(shares: list[PodShare]) -> list[dict[str, Any]]:
    """Every stage any pod summarized, in run order (pod 0's order first)."""
    seen: dict[str, dict[str, Any]] = {}
    for share in shares:
        for stage in (share.summary or {}).get("stages", []):
            seen.setdefault(stage["id"], stage)
    for share in shares:  # a stage a pod died in has records but no summary
        for rec in share.records:
            if rec.stage not in seen:
                _, mode, level = rec.stage.split("-", 2)
                seen[rec.stage] = {"id": rec.stage, "mode": mode, "level": float(level),
                                   "arrival": "closed" if mode == "batch" else (share.run["config"]["arrival"])}
    return sorted(seen.values(), key=lambda s: int(s["id"].split("-", 1)[0]))


def _audit(share: PodShare, first_start: float | None) -> dict[str, Any]:
    measured = [r for r in share.records if not r.warmup]
    delays = [1000 * (r.sent - r.scheduled) for r in share.records if r.sent is not None]
    d = stats(delays) or {}
    first_sent = min((r.sent for r in share.records if r.sent is not None), default=None)
    cpu = [s["client"]["cpuPercent"] for s in (share.summary or {}).get("stages", [])
           if (s.get("client") or {}).get("cpuPercent") is not None]
    pod = share.run["pod"]
    return {
        "index": share.index, "sent": sum(1 for r in share.records if r.sent is not None),
        "measured": len(measured), "errors": sum(1 for r in measured if not r.ok),
        "dispatchDelayMs": {"p50": d.get("p50"), "p99": d.get("p99"), "max": d.get("max")},
        "firstSendAfterStartMs": (None if first_sent is None or first_start is None
                                  else round(1000 * (first_sent - first_start), 3)),
        "clockOffsetS": round(share.shift, 6), "clock": pod.get("clock"),
        "cpuPercentMean": round(sum(cpu) / len(cpu), 1) if cpu else None,
        "complete": bool((share.summary or {}).get("complete")),
    }


def merge(src: str, results_root: Path, partial: bool = False, model_check: bool = True) -> Path:
    """The merged run's directory. ``model_check``: replay each merged stage on the stack's performance
    model, as a single-process run does (the pods cannot: each holds only its share)."""
    shares = load_shares(src, partial)
    base = shares[0]
    run0 = base.run
    count = int(run0["pod"]["count"])
    start0 = float(run0["pod"]["startAt"]) - float(run0["clockOrigin"])  # stage 0's start on pod 0's clock
    meta = {k: v for k, v in run0.items() if k != "pod"}
    audit = [_audit(s, start0) for s in shares]
    errors = [a["clock"]["estErrorUs"] for a in audit if (a.get("clock") or {}).get("estErrorUs") is not None]
    meta["pods"] = {"count": count, "merged": [s.index for s in shares], "source": src,
                    "startAt": run0["pod"]["startAtUtc"],
                    # two clocks each within e of true time are within e1 + e2 of each other
                    "clockOffsetBoundUs": sum(sorted(errors)[-2:]) if len(errors) >= 2 else None}
    meta["config"] = {**meta["config"], "podIndex": None}
    try:
        writer = ResultsWriter(results_root, Path(str(run0["stack"])).name.removesuffix(".yaml"), run0["runId"])
    except FileExistsError as exc:
        raise BadInput(f"{exc}: this run was merged before", "give another --results-dir, or remove that "
                                                              "directory to merge again") from None
    try:
        writer.write_json("run.json", meta)
        slo = run0["config"].get("slo") or {}
        spec = load_stack_spec(str(run0["stack"])) if model_check else None
        state = RunState(meta, workload=(base.summary or {}).get("workload"))
        missing = sorted(set(range(count)) - {s.index for s in shares})
        if missing:
            state.warnings.append(f"pods {missing} of {count} are missing: their shares of every stage are absent")
        for share in shares:
            state.warnings += [f"pod {share.index}: {w}" for w in (share.summary or {}).get("warnings", [])]
        for entry in base.scrapes:
            writer.write_scrape(entry)
        coverage = []
        for stage in _stage_meta(shares):
            records = sorted((r for s in shares for r in s.records if r.stage == stage["id"]), key=lambda r: r.i)
            numbers = [r.i for r in records]
            if len(set(numbers)) != len(numbers):
                raise BadInput(f"stage {stage['id']}: request numbers repeat across pods: the shares overlapped",
                               "every pod must run with the same --pods and a distinct JOB_COMPLETION_INDEX")
            for rec in records:
                writer.write_request(rec)
            pod_stages = [st for s in shares for st in (s.summary or {}).get("stages", []) if st["id"] == stage["id"]]
            base_stage: dict[str, Any] = next(
                (st for st in (base.summary or {}).get("stages", []) if st["id"] == stage["id"]), {})
            cpu = [st["client"]["cpuPercent"] for st in pod_stages if (st.get("client") or {}).get("cpuPercent")]
            start = min((r.scheduled for r in records), default=start0)
            end = max((r.end for r in records if r.end is not None), default=start)
            summary = summarize_stage(
                stage_id=stage["id"], mode=stage["mode"], level=stage["level"], arrival=stage["arrival"],
                records=records, start=start, end=end, slo=slo,
                interrupted=any(st.get("interrupted") for st in pod_stages) or len(pod_stages) < len(shares),
                server=base_stage.get("serverMetrics"),
                client={"pods": len(shares), "cpuPercent": round(sum(cpu) / len(cpu), 1) if cpu else None,
                        "httpClient": run0["tool"]["httpClient"]})
            if model_check:
                predicted = check_stage(spec, summary, records, modelled_target=bool(run0.get("modelled")), slo=slo,
                                        max_concurrency=run0["config"].get("maxConcurrency"))
                if predicted:
                    writer.write_predicted(predicted)
                    writer.write_columns(PREDICTED_FILE, stage["id"], predicted)
            writer.write_columns(REQUESTS_FILE, stage["id"], records)
            state.stages.append(summary)
            contiguous = bool(numbers) and numbers[-1] - numbers[0] + 1 == len(numbers)
            coverage.append({"stage": stage["id"], "requests": len(records), "pods": len(pod_stages),
                             "numbersContiguous": contiguous})
            if stage["mode"] == "rate" and numbers and not contiguous:
                state.warnings.append(f"stage {stage['id']}: {numbers[-1] - numbers[0] + 1 - len(numbers)} "
                                      "scheduled requests are missing (a pod stopped early or is missing)")
        state.complete = not missing and all(a["complete"] for a in audit)
        state.partial = not state.complete
        writer.write_json(AUDIT_FILE, {"pods": audit, "stages": coverage, "clockOffsetBoundUs":
                                       meta["pods"]["clockOffsetBoundUs"]})
        writer.write_json("summary.json", state.summary())
    finally:
        writer.close()
    return writer.dir
