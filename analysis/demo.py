"""``python -m analysis demo``: the main job on the embedded default, without a cloud.

For each demo stack (the guide's G2/A3 pairs, ``stacks/Pulumi.llama2-*.yaml``):
  1. offline plan (``python -m stacks plan <stack> --json``), skipped with a notice if absent;
  2. the guide's workloads against the stack's simulated endpoint (``python -m loadtest run
     --target sim``): a static batch sweep 16 → 256 at fixed lengths, a rate sweep at fractions of the
     capacity that sweep found, and an input-heavy (prefill) workload;
then ``compare`` over exactly these runs → ``<out>/report.md`` + PNGs, and the headline verdicts.

The simulated endpoint waits in real time, so stacks run concurrently (they are mostly idle): the
whole demo fits in ten minutes on two cores. Nothing is faked: if the load tester is missing or a
run fails, the demo stops with the failing command and its output.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .loader import load_runs
from .report import analyse, headline, write_report
from .slo import parse_slo

EXIT_FAILED = 1
DEMO_PREFIX = "llama2-"
BATCH_LEVELS = (16, 32, 64, 128, 256)  # the guide's static batch sweep
LENGTHS = (128, 64)  # fixed input / output tokens of the batch and rate sweeps
RATE_FRACTIONS = (0.25, 0.5, 0.75, 1.0)  # of the capacity the batch sweep measured
PREFILL = {"levels": (4, 16), "input": 2048, "output": 8}  # input-heavy: 256 × more input than output
RATE_SECONDS = 8.0  # measured seconds of sending per rate stage (× --scale)


class DemoFailed(Exception):
    """A step failed; the message says which command, and the log holds its output."""


@dataclass
class StackProgress:
    stack: str
    step: str = "waiting"
    run_dir: Path | None = None
    started: float = field(default_factory=time.monotonic)
    runs: list[Path] = field(default_factory=list)
    done: bool = False


def _py() -> list[str]:
    return [sys.executable]


def _say(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def demo_stacks(arg: str | None) -> list[str]:
    from stacks.loader import stack_files

    files = stack_files()
    if arg:
        names = [s.strip() for s in arg.split(",") if s.strip()]
        unknown = [n for n in names if n not in files]
        if unknown:
            from .errors import AnalysisError

            raise AnalysisError("--stacks", f"unknown stack(s): {', '.join(unknown)}",
                                f"use committed stacks: {', '.join(sorted(files))}")
        return names
    return sorted(n for n in files if n.startswith(DEMO_PREFIX))


def _module_available(module: str, sub: str) -> bool:
    """True when ``python -m <module> <sub> --help`` exits 0: the command exists in this checkout."""
    p = subprocess.run([*_py(), "-m", module, sub, "--help"], capture_output=True, text=True, timeout=60)
    return p.returncode == 0


def plan_stacks(stacks: list[str], out: Path) -> None:
    """Step 1: the offline plan of every stack, or a clear notice that the command is absent."""
    if not _module_available("stacks", "plan"):
        _say("offline plan: `python -m stacks plan` is not available in this checkout: SKIPPED "
             "(the stacks were still validated by `python -m stacks check`)")
        return
    plans = out / "plans"
    plans.mkdir(parents=True, exist_ok=True)
    for stack in stacks:
        cmd = [*_py(), "-m", "stacks", "plan", stack, "--json"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        (plans / f"{stack}.json").write_text(p.stdout)
        if p.returncode != 0:
            raise DemoFailed(f"`{' '.join(cmd[1:])}` exited {p.returncode}:\n{p.stderr[-3000:]}")
        _say(f"plan {stack}: {_plan_line(p.stdout)} → {plans / (stack + '.json')}")


def _plan_line(text: str) -> str:
    """``N resources, $X/h`` from the plan's JSON (``{"stacks": [{resources, cost, ...}], "errors": []}``)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return "ok"
    entries = doc.get("stacks") if isinstance(doc, dict) else None
    entry = entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], dict) else doc
    if not isinstance(entry, dict):
        return "ok"
    parts = []
    if isinstance(entry.get("resources"), list):
        parts.append(f"{len(entry['resources'])} resources")
    usd = (entry.get("cost") or {}).get("usdPerHour") if isinstance(entry.get("cost"), dict) else None
    if usd is not None:
        parts.append(f"${usd:.2f}/h")
    return ", ".join(parts) or "ok"


class LoadRunner:
    """Runs ``python -m loadtest run --target sim`` for one stack's workloads, in order."""

    def __init__(self, stack: str, results: Path, logs: Path, scale: float, stamp: str,
                 progress: StackProgress, stop: threading.Event):
        self.stack, self.results, self.logs, self.scale = stack, results, logs, scale
        self.stamp, self.progress, self.stop = stamp, progress, stop

    def run(self, name: str, args: list[str]) -> Path:
        if self.stop.is_set():
            raise DemoFailed(f"{self.stack}: stopped before {name}")
        run_id = f"{self.stamp}-{name}"
        cmd = [*_py(), "-m", "loadtest", "run", "--stack", self.stack, "--target", "sim", *args,
               "--results-dir", str(self.results), "--run-id", run_id, "--no-progress"]
        log = self.logs / f"{self.stack}-{name}.log"
        self.progress.step = name
        self.progress.run_dir = self.results / self.stack / run_id
        _say(f"{self.stack}: {name} started")
        t0 = time.monotonic()
        with open(log, "w") as f:
            f.write("$ " + " ".join(cmd) + "\n")
            f.flush()
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, text=True)
            while proc.poll() is None:
                if self.stop.wait(0.5):
                    proc.terminate()  # the load tester writes a partial summary on SIGTERM/SIGINT
                    proc.wait(30)
        text = log.read_text()
        took = time.monotonic() - t0
        if proc.returncode != 0:
            raise DemoFailed(f"{self.stack}: `{' '.join(cmd[1:])}` exited {proc.returncode}; log {log}:\n"
                             + "\n".join(text.splitlines()[-25:]))
        lines = [ln for ln in text.splitlines() if ln.startswith("results: ")]
        path = Path(lines[-1].split(": ", 1)[1]) if lines else self.progress.run_dir
        self.progress.runs.append(path)
        _say(f"{self.stack}: {name} done in {took:.0f} s, {_count_lines(path)} requests → {path}")
        return path

    def all(self) -> list[Path]:
        s = self.scale
        lin, lout = LENGTHS
        batch = self.run("batch", [
            "--mode", "batch", "--levels", ",".join(map(str, BATCH_LEVELS)), "--input-len", str(lin),
            "--output-len", str(lout), "--requests-per-level", str(max(16, round(256 * s))), "--seed", "1"])
        rates = rate_levels(batch)
        self.run("rate", [
            "--mode", "rate", "--arrival", "poisson", "--levels", ",".join(f"{r:g}" for r in rates),
            "--duration", f"{RATE_SECONDS * s:g}", "--input-len", str(lin), "--output-len", str(lout), "--seed", "2"])
        levels = PREFILL["levels"]
        self.run("prefill", [
            "--mode", "batch", "--levels", ",".join(map(str, levels)), "--input-len", str(PREFILL["input"]),
            "--output-len", str(PREFILL["output"]), "--requests-per-level", str(max(8, round(2 * levels[-1] * s))),
            "--seed", "3"])
        self.progress.done = True
        self.progress.step = "done"
        return self.progress.runs


def rate_levels(batch_run: Path) -> list[float]:
    """Request rates at fractions of the capacity the batch sweep measured (2 significant digits)."""
    run = load_runs([str(batch_run)])[0]
    ok = run.requests.loc[run.requests["error"].isna() & ~run.requests["warmup"]]
    if ok.empty:
        raise DemoFailed(f"{batch_run}: the batch sweep completed no request; cannot size the rate sweep")
    per_stage = ok.groupby("stage").agg(n=("end", "size"), t0=("sent", "min"), t1=("end", "max"))
    capacity = float((per_stage["n"] / (per_stage["t1"] - per_stage["t0"])).max())
    return [_round2(capacity * f) for f in RATE_FRACTIONS]


def _round2(x: float) -> float:
    if x <= 0:
        return 0.1
    digits = 1 - math.floor(math.log10(x))
    return round(x, digits)


def _count_lines(path: Path | None) -> int:
    if path is None:
        return 0
    try:
        with open(path / "requests.jsonl", "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 16), b""))
    except OSError:
        return 0


def _monitor(progress: list[StackProgress], stop: threading.Event, every: float = 10.0) -> None:
    t0 = time.monotonic()
    while not stop.wait(every):
        parts = [f"{p.stack}: {p.step}" + ("" if p.done else f" ({_count_lines(p.run_dir)} req)") for p in progress]
        _say(f"{time.monotonic() - t0:4.0f}s  " + " | ".join(parts))


def run_demo(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    out: Path = args.out
    results: Path = args.results_dir or out / "results"
    logs = out / "logs"
    for d in (out, results, logs):
        d.mkdir(parents=True, exist_ok=True)
    slo = parse_slo(args.slo)
    stacks = demo_stacks(args.stacks)
    _say(f"stacks: {', '.join(stacks)}; SLO {slo}; report → {out / 'report.md'}")
    try:
        _say("step 1/3: offline plan of each stack")
        plan_stacks(stacks, out)
        if not _module_available("loadtest", "run"):
            raise DemoFailed("the load tester (`python -m loadtest run`) is not available in this checkout: "
                             "the demo cannot measure anything and does not fake results")
        _say(f"step 2/3: the guide's workloads on each stack's simulated endpoint (logs in {logs}): batch sweep "
             f"{'→'.join(map(str, BATCH_LEVELS))} at {LENGTHS[0]}→{LENGTHS[1]} tokens; Poisson rate sweep at "
             f"{', '.join(f'{f:.0%}' for f in RATE_FRACTIONS)} of the measured capacity; prefill "
             f"{PREFILL['input']}→{PREFILL['output']} tokens")
        run_dirs = _load_test_all(stacks, results, logs, args.scale, args.parallel)
    except DemoFailed as exc:
        print(f"demo FAILED: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _say(f"step 3/3: compare {len(run_dirs)} runs")
    analysis = analyse(load_runs([str(p) for p in run_dirs]), slo)
    path = write_report(analysis, out)
    print()
    for line in headline(analysis):
        print("  " + line.replace("**", "").replace("*", ""))
    for f in analysis.findings:
        print(f"  [{f.verdict}] {f.claim}: guide {f.guide}, here {f.measured}")
    print()
    _say(f"done in {time.monotonic() - t0:.0f} s. Report: {path} (figures and CSVs beside it; all numbers are "
         "modelled by the simulated endpoint)")
    return 0


def _load_test_all(stacks: list[str], results: Path, logs: Path, scale: float, parallel: int) -> list[Path]:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    progress = [StackProgress(s) for s in stacks]
    stop, done = threading.Event(), threading.Event()
    monitor = threading.Thread(target=_monitor, args=(progress, done), daemon=True)
    monitor.start()
    runners = [LoadRunner(s, results, logs, scale, stamp, p, stop) for s, p in zip(stacks, progress, strict=True)]
    pool = ThreadPoolExecutor(max_workers=parallel or len(stacks))
    try:
        futures = [pool.submit(r.all) for r in runners]
        paths: list[Path] = []
        errors: list[str] = []
        for fut in futures:
            try:
                paths += fut.result()
            except DemoFailed as exc:
                stop.set()  # the other stacks stop too: a report over some stacks would mislead
                errors.append(str(exc))
        if errors:
            raise DemoFailed("\n".join(errors))
        return paths
    except KeyboardInterrupt:
        stop.set()
        raise
    finally:
        pool.shutdown(wait=True)
        done.set()
