"""``python -m analysis demo``: the main job on the embedded default, without a cloud.

For each demo stack (``DEMO_STACKS``: the guide's G2/A3 pairs for Llama-2-7B and -70B, the single-L4
7B stack and the fp8 G2 variants):
  1. offline plan (``python -m offline plan <stack> --json``), skipped with a notice if absent;
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
import contextlib
import json
import math
import os
import signal
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
# The guide's G2/A3 pairs: Llama-2-7B on two L4s (g2-standard-24, the shape whose price makes the guide's
# "A3 costs 5.5x G2") vs one H100, Llama-2-70B on eight L4s vs eight H100s; the fp8 G2 variants and the
# single-L4 bf16 stack they quantize show recommendation 1.
DEMO_STACKS = ("llama2-7b-g2x2", "llama2-7b-a3", "llama2-70b-g2", "llama2-70b-a3", "llama2-7b-g2",
               "llama2-7b-g2-fp8", "llama2-70b-g2-fp8")
RUN_TIMEOUT_S = 400.0  # one load-test run (the longest demo run takes about 70 s): over it, the demo fails
FAST_DECODE_STEPS_PER_S = 100.0  # above this, a stack's endpoint streams fast enough to load the client


@dataclass(frozen=True)
class Workloads:
    """The guide's workloads, as the demo sizes them (request counts chosen to fit ten minutes)."""

    batch_levels: tuple[int, ...] = (16, 32, 64, 128, 256)  # static batches: N requests sent at once
    lengths: tuple[int, int] = (128, 64)  # fixed input / output tokens of the batch and rate sweeps
    rate_fractions: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)  # of the capacity the batch sweep measured
    rate_seconds: float = 8.0  # seconds of Poisson arrivals per rate stage
    prefill_levels: tuple[int, ...] = (4, 16)  # input-heavy static batches
    prefill_lengths: tuple[int, int] = (2048, 8)  # 256 × more input than output: prefill-bound
    prefill_batches: int = 1  # static batches per prefill level
    # Server metrics every 0.25 s during the batch sweep: a static batch of 16 on an H100 lasts about a
    # second, so the default 1 s interval would catch one sample or none of its running batch.
    batch_scrape_s: float = 0.25

    def describe(self) -> str:
        return (f"static batches {'→'.join(map(str, self.batch_levels))} at {self.lengths[0]}→{self.lengths[1]} "
                f"tokens; Poisson rate sweep at {', '.join(f'{f:.0%}' for f in self.rate_fractions)} of the "
                f"measured capacity ({self.rate_seconds:g} s each); input-heavy batches "
                f"{', '.join(map(str, self.prefill_levels))} at {self.prefill_lengths[0]}→{self.prefill_lengths[1]}")


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
        _validate(names, files)
        return names
    names = list(DEMO_STACKS)
    missing = [n for n in DEMO_STACKS if n not in files]
    if missing:
        from .errors import AnalysisError

        raise AnalysisError("stacks/", f"demo stack file(s) missing: {', '.join(f'Pulumi.{n}.yaml' for n in missing)}",
                            "restore them from git, or pass --stacks with the stacks to compare")
    _validate(names, files)
    return names


def _validate(names: list[str], files: dict[str, Path]) -> None:
    """Every demo stack must be a valid stack file: fail before anything runs, listing every error."""
    from stacks.errors import SpecErrors
    from stacks.loader import load_stack_file

    problems = []
    for name in names:
        try:
            load_stack_file(files[name], name)
        except SpecErrors as exc:
            problems.append(str(exc))
    if problems:
        from .errors import AnalysisError

        raise AnalysisError("stacks", "invalid demo stack(s):\n" + "\n".join(problems),
                            "fix the stack files (`python -m stacks check` lists every error)")


def _module_available(module: str, sub: str) -> bool:
    """True when ``python -m <module> <sub> --help`` exits 0: the command exists in this checkout."""
    p = subprocess.run([*_py(), "-m", module, sub, "--help"], capture_output=True, text=True, timeout=60)
    return p.returncode == 0


def plan_stacks(stacks: list[str], out: Path) -> dict[str, str]:
    """Step 1: the offline plan of every stack (stack → one-line summary), or a notice that it is absent."""
    if not _module_available("offline", "plan"):
        _say("offline plan: `python -m offline plan` is not available in this checkout: SKIPPED "
             "(the stack files were still validated)")
        return {}
    plans = out / "plans"
    plans.mkdir(parents=True, exist_ok=True)
    lines: dict[str, str] = {}
    for stack in stacks:
        cmd = [*_py(), "-m", "offline", "plan", stack, "--json"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        (plans / f"{stack}.json").write_text(p.stdout)
        if p.returncode != 0:
            raise DemoFailed(f"`{' '.join(cmd[1:])}` exited {p.returncode}:\n{p.stderr[-3000:]}")
        lines[stack] = _plan_line(p.stdout)
        _say(f"plan {stack}: {lines[stack]} → {plans / (stack + '.json')}")
    return lines


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

    def __init__(self, stack: str, results: Path, logs: Path, workloads: Workloads, stamp: str,
                 progress: StackProgress, stop: threading.Event):
        self.stack, self.results, self.logs, self.w = stack, results, logs, workloads
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
        t0 = time.monotonic()
        with open(log, "w") as f:
            f.write("$ " + " ".join(cmd) + "\n")
            f.flush()
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, text=True)
            while proc.poll() is None:
                if self.stop.wait(0.5):
                    _stop_tree(proc)  # the load tester writes a partial summary when stopped
                    break
                if time.monotonic() - t0 > RUN_TIMEOUT_S:
                    _stop_tree(proc)
                    raise DemoFailed(f"{self.stack}: `{' '.join(cmd[1:])}` ran over {RUN_TIMEOUT_S:.0f} s and "
                                     f"was stopped; log {log}")
        text = log.read_text()
        took = time.monotonic() - t0
        if proc.returncode != 0:
            raise DemoFailed(f"{self.stack}: `{' '.join(cmd[1:])}` exited {proc.returncode}; log {log}:\n"
                             + "\n".join(text.splitlines()[-25:]))
        lines = [ln for ln in text.splitlines() if ln.startswith("results: ")]
        path = Path(lines[-1].split(": ", 1)[1]) if lines else self.progress.run_dir
        self.progress.runs.append(path)
        stage_lines = [ln for ln in text.splitlines() if ln.startswith("stage ")]
        detail = stage_lines[-1].split(": ", 1)[-1] if stage_lines else f"{_count_lines(path)} requests"
        _say(f"{self.stack}: {name} done in {took:.0f} s: {detail}")
        return path

    def all(self) -> list[Path]:
        w = self.w
        lin, lout = w.lengths
        batch_runs = []
        for n in w.batch_levels:  # one run per level: each stage is exactly one static batch of n
            batch_runs.append(self.run(f"batch-{n}", [
                "--mode", "batch", "--levels", str(n), "--requests-per-level", str(n), "--input-len", str(lin),
                "--output-len", str(lout), "--seed", "1", "--scrape-interval", f"{w.batch_scrape_s:g}"]))
        rates = rate_levels(batch_runs, w.rate_fractions)
        self.run("rate", [
            "--mode", "rate", "--arrival", "poisson", "--levels", ",".join(f"{r:g}" for r in rates),
            "--duration", f"{w.rate_seconds:g}", "--input-len", str(lin), "--output-len", str(lout), "--seed", "2"])
        pin, pout = w.prefill_lengths
        for n in w.prefill_levels:
            self.run(f"prefill-{n}", [
                "--mode", "batch", "--levels", str(n), "--requests-per-level", str(n * w.prefill_batches),
                "--input-len", str(pin), "--output-len", str(pout), "--seed", "3"])
        self.progress.done = True
        self.progress.step = "done"
        return self.progress.runs


def _descendants(pid: int) -> list[int]:
    """PIDs of a process's descendants (Linux /proc), deepest last: the simulated endpoint it started."""
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                out += [int(child), *_descendants(int(child))]
    except OSError:
        pass
    return out


def _stop_tree(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the load tester (it stops its own simulated endpoint); after ``grace`` s, SIGKILL it and
    whatever it started, by PID."""
    proc.terminate()
    try:
        proc.wait(grace)
        return
    except subprocess.TimeoutExpired:
        pass
    for pid in [*_descendants(proc.pid), proc.pid]:  # still alive: its children are still its children
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(5)


def rate_levels(batch_runs: list[Path], fractions: tuple[float, ...]) -> list[float]:
    """Request rates at fractions of the capacity the batch sweep found (2 significant digits).

    The capacity is read from the records that decide (``Run.deciding_requests``): on a simulated
    endpoint the model's replay, so the rate levels, like the verdicts, do not depend on host load.
    """
    capacity = 0.0
    for run in load_runs([str(p) for p in batch_runs]):
        req = run.deciding_requests()
        ok = req.loc[req["error"].isna() & ~req["warmup"]]
        if len(ok) and ok["end"].max() > ok["sent"].min():
            capacity = max(capacity, len(ok) / float(ok["end"].max() - ok["sent"].min()))
    if capacity <= 0:
        raise DemoFailed(f"{batch_runs[0].parent}: the batch sweep completed no request; cannot size the rate sweep")
    return sorted({_round2(capacity * f) for f in fractions})


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


def lanes(stacks: list[str]) -> list[list[str]]:
    """Which stacks load-test at once. The simulated endpoints wait in real time, so slow stacks run
    side by side (each mostly idle); stacks whose endpoint streams tokens fast (decode steps/s from
    memory bandwidth ÷ weight bytes above FAST_DECODE_STEPS_PER_S) share one lane, so the load
    generator never competes with itself for the cores and distorts their latencies."""
    from stacks.loader import load_stack_file, stack_files

    fast, out = [], []
    for name in stacks:
        spec = load_stack_file(stack_files()[name], name)
        steps = spec.machine.chip.bandwidth_gbps * 1e9 * spec.tensor_parallel / spec.sizing.weight_bytes
        (fast.append(name) if steps > FAST_DECODE_STEPS_PER_S else out.append([name]))
    return out + ([fast] if fast else [])


def run_demo(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    out: Path = args.out
    results: Path = args.results_dir or out / "results"
    logs = out / "logs"
    for d in (out, results, logs):
        d.mkdir(parents=True, exist_ok=True)
    slo = parse_slo(args.slo)
    stacks = demo_stacks(args.stacks)
    workloads = Workloads(batch_levels=_levels("--batch-levels", args.batch_levels),
                          prefill_levels=_levels("--prefill-levels", args.prefill_levels),
                          rate_seconds=args.rate_seconds)
    _say(f"stacks: {', '.join(stacks)}; SLO {slo}; report → {out / 'report.md'}")
    try:
        _say("step 1/3: offline plan of each stack")
        plans = plan_stacks(stacks, out)
        if not _module_available("loadtest", "run"):
            raise DemoFailed("the load tester (`python -m loadtest run`) is not available in this checkout: "
                             "the demo cannot measure anything and does not fake results")
        _say(f"step 2/3: the guide's workloads on each stack's simulated endpoint: {workloads.describe()} "
             f"(logs in {logs})")
        run_dirs = _load_test_all(stacks, results, logs, workloads)
    except DemoFailed as exc:
        print(f"demo FAILED: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _say(f"step 3/3: compare {len(run_dirs)} runs")
    analysis = analyse(load_runs([str(p) for p in run_dirs]), slo)
    path = write_report(analysis, out)
    _append_plans(path, plans)
    print()
    for line in headline(analysis):
        print("  " + line.replace("**", "").replace("*", ""))
    for f in analysis.findings:
        print(f"  [{f.verdict}] {f.claim}: guide {f.guide}, here {f.measured}")
    print()
    _say(f"done in {time.monotonic() - t0:.0f} s. Report: {path} (figures and CSVs beside it; every number is "
         "modelled by the simulated endpoints)")
    return 0


def _append_plans(report: Path, plans: dict[str, str]) -> None:
    """The demo's step 1 in the report: what the offline plan of each stack builds and costs."""
    text = "## Offline plans\n\n"
    if plans:
        text += ("The Pulumi program of each stack run under mocks (`python -m offline plan <stack> --json`); the "
                 "full plans are in `plans/`.\n\n| stack | plan |\n|---|---|\n")
        text += "".join(f"| {stack} | {line} |\n" for stack, line in plans.items())
    else:
        text += "`python -m offline plan` was not available: no offline plan was made.\n"
    with open(report, "a") as f:
        f.write("\n" + text)


def _levels(flag: str, text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        levels = ()
    if not levels or min(levels) < 1:
        from .errors import AnalysisError

        raise AnalysisError(flag, f'"{text}" is not a list of batch sizes', f"write e.g. {flag} 16,32,64")
    return levels


def _load_test_all(stacks: list[str], results: Path, logs: Path, workloads: Workloads) -> list[Path]:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    progress = {s: StackProgress(s) for s in stacks}
    stop, done = threading.Event(), threading.Event()
    monitor = threading.Thread(target=_monitor, args=(list(progress.values()), done), daemon=True)
    monitor.start()
    groups = lanes(stacks)
    _say("lanes (run side by side): " + " | ".join(" → ".join(g) for g in groups))

    def lane(names: list[str]) -> list[Path]:
        paths: list[Path] = []
        for name in names:
            paths += LoadRunner(name, results, logs, workloads, stamp, progress[name], stop).all()
        return paths

    pool = ThreadPoolExecutor(max_workers=len(groups))
    try:
        futures = [pool.submit(lane, g) for g in groups]
        paths: list[Path] = []
        errors: list[str] = []
        for fut in futures:
            try:
                paths += fut.result()
            except DemoFailed as exc:
                stop.set()  # the other stacks stop too: a report over some of the stacks would mislead
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
