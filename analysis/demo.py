"""``python -m analysis demo``: the main job on the embedded default, without a cloud.

For each demo stack (``DEMO_STACKS``: the guide's G2/A3 pairs for Llama-2-7B and -70B, the single-L4
7B stack and the fp8 G2 variants):
  1. offline plan (``python -m offline plan <stack> --json``), skipped with a notice if absent;
  2. the guide's workloads against the stack's simulated endpoint (``python -m loadtest run
     --target sim``): a static batch sweep 16 → 256 at fixed lengths, a rate sweep at fractions of the
     capacity that sweep found, and an input-heavy (prefill) workload;
then ``compare`` over exactly these runs → ``<out>/report.md`` + PNGs, and the headline verdicts;
last, the guide's 7B and 70B cases asked of ``stacks recommend`` (the whole catalog, predicted), its
picks set beside the cheapest stacks the demo measured (``recommend_check.py``).

The simulated endpoint waits in real time, so stacks run concurrently (they are mostly idle), as
many at once as the idle cores serve. Every stage is decided on the model's replay of it
(``loadtest/model_check.py``), so the answer does not depend on how busy the machine is. Nothing is
faked: a failed run is recorded in the attempt's ledger (``demo_attempt.py``) and listed in the
report as missing, and ``--resume`` redoes only what is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.progress import stage_line

from .demo_attempt import LEDGER, Attempt
from .html import write_html
from .loader import load_runs
from .recommend_check import recommend_vs_measured
from .report import analyse, print_summary, write_report
from .slo import parse_slo

EXIT_FAILED = 1
# The guide's G2/A3 pairs: Llama-2-7B on two L4s (g2-standard-24, the shape whose price makes the guide's
# "A3 costs 5.5x G2") vs one H100, Llama-2-70B on eight L4s vs eight H100s; the fp8 G2 variants and the
# single-L4 bf16 stack they quantize show recommendation 1.
DEMO_STACKS = ("llama2-7b-g2x2", "llama2-7b-a3", "llama2-70b-g2", "llama2-70b-a3", "llama2-7b-g2",
               "llama2-7b-g2-fp8", "llama2-70b-g2-fp8")
RUN_TIMEOUT_S = 400.0  # one load-test run (the longest demo run takes about 70 s): over it, the demo fails
FAST_DECODE_STEPS_PER_S = 100.0  # above this, a stack's endpoint streams fast enough to load the client
# CPU one lane (a simulated endpoint and its load tester) takes: `make demo` with every lane at once
# used 1.2 cores on average for 6 lanes (0.2 each; `time`), single processes peaked at 0.3-0.6 (`top`);
# an idle 2-core machine runs the demo's six lanes at once
LANE_CPU_CORES = 0.33


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

    @property
    def runs_per_stack(self) -> int:
        return len(self.batch_levels) + 1 + len(self.prefill_levels)

    def key(self) -> dict[str, object]:
        """What an attempt runs, for ``--resume`` to check it asks for the same."""
        return {"batchLevels": list(self.batch_levels), "prefillLevels": list(self.prefill_levels),
                "rateSeconds": self.rate_seconds}

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
    total: int = 0  # runs this stack has to make
    step: str = "waiting"
    run_dir: Path | None = None
    started: float = field(default_factory=time.monotonic)
    runs: list[Path] = field(default_factory=list)
    finished: int = 0  # runs finished or failed
    failed: int = 0
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
    """Step 1: the offline plan of every stack (stack → one-line summary), or a notice that it is absent.

    One ``python -m offline plan A B ... --json`` for all of them (one Pulumi import, not one per
    stack); each stack's entry is saved to ``plans/<stack>.json``."""
    if not _module_available("offline", "plan"):
        _say("offline plan: `python -m offline plan` is not available in this checkout: SKIPPED "
             "(the stack files were still validated)")
        return {}
    plans = out / "plans"
    plans.mkdir(parents=True, exist_ok=True)
    cmd = [*_py(), "-m", "offline", "plan", *stacks, "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise DemoFailed(f"`{' '.join(cmd[1:])}` exited {p.returncode}:\n{p.stderr[-3000:]}")
    try:
        entries = {e["stack"]: e for e in json.loads(p.stdout)["stacks"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise DemoFailed(f"`{' '.join(cmd[1:])}` printed no plan document ({exc})") from None
    lines: dict[str, str] = {}
    for stack in stacks:
        entry = entries.get(stack)
        if entry is None:
            raise DemoFailed(f"`{' '.join(cmd[1:])}` planned no stack {stack}")
        text = json.dumps({"stacks": [entry], "errors": []}, indent=1)
        (plans / f"{stack}.json").write_text(text + "\n")
        lines[stack] = _plan_line(text)
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
    cost: dict[str, Any] = entry["cost"] if isinstance(entry.get("cost"), dict) else {}
    if cost.get("usdPerHourAllIn") is not None:
        parts.append(f"${cost['usdPerHourAllIn']:.2f}/h all-in (accelerators ${cost.get('usdPerHour', 0):.2f}/h)")
    elif cost.get("usdPerHour") is not None:
        parts.append(f"${cost['usdPerHour']:.2f}/h")
    return ", ".join(parts) or "ok"


class LoadRunner:
    """Runs ``python -m loadtest run --target sim`` for one stack's workloads, in order.

    A failed run is recorded in the attempt's ledger and the stack goes on with the runs that do not
    need it (the rate sweep needs one finished batch run); a run the attempt already finished is
    reused (``--resume``).
    """

    def __init__(self, stack: str, attempt: Attempt, logs: Path, workloads: Workloads, progress: StackProgress,
                 stop: threading.Event):
        self.stack, self.attempt, self.logs, self.w = stack, attempt, logs, workloads
        self.progress, self.stop = progress, stop

    def run(self, name: str, args: list[str]) -> Path:
        if self.stop.is_set():
            raise DemoFailed(f"{self.stack}: stopped before {name}")
        done = self.attempt.finished(self.stack, name)
        if done is not None:
            self.progress.runs.append(done)
            _say(f"{self.stack}: {name} reused from this attempt: {done}")
            return done
        run_id = f"{self.attempt.stamp}-{name}"
        results = self.attempt.dir
        cmd = [*_py(), "-m", "loadtest", "run", "--stack", self.stack, "--target", "sim", *args,
               "--results-dir", str(results), "--run-id", run_id, "--no-progress"]
        log = self.logs / f"{self.stack}-{name}.log"
        self.progress.step = name
        self.progress.run_dir = results / self.stack / run_id
        if self.progress.run_dir.exists():  # a run this attempt started and did not finish: redo it
            shutil.rmtree(self.progress.run_dir)
        t0 = time.monotonic()
        with open(log, "w") as f:
            f.write("$ " + " ".join(cmd) + "\n")
            f.flush()
            # its own process group: the load tester and the simulated endpoint it starts stop together
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, text=True, start_new_session=True)
            while proc.poll() is None:
                if self.stop.wait(0.5):
                    _stop_tree(proc)  # the load tester writes a partial summary when stopped
                    break
                if time.monotonic() - t0 > RUN_TIMEOUT_S:
                    _stop_tree(proc)
                    raise DemoFailed(f"{self.stack}: `{' '.join(cmd[1:])}` ran over {RUN_TIMEOUT_S:.0f} s and "
                                     f"was stopped; log {log}")
        took = time.monotonic() - t0
        path = self.progress.run_dir  # --results-dir and --run-id name it: nothing to parse from the output
        if proc.returncode != 0:
            raise DemoFailed(f"{self.stack}: `{' '.join(cmd[1:])}` exited {proc.returncode}; log {log}:\n"
                             + "\n".join(log.read_text().splitlines()[-25:]))
        try:
            stages = json.loads((path / "summary.json").read_text())["stages"]
        except (OSError, ValueError, KeyError) as exc:
            raise DemoFailed(f"{self.stack}: `{' '.join(cmd[1:])}` exited 0 but {path} holds no summary ({exc}); "
                             f"log {log}") from None
        self.progress.runs.append(path)
        self.attempt.record(self.stack, name, path)
        detail = stage_line(stages[-1]) if stages else f"{_count_lines(path)} requests"
        _say(f"{self.stack}: {name} done in {took:.0f} s: {detail}")
        return path

    def _try(self, name: str, args: list[str]) -> Path | None:
        """``run``, but a failure is recorded (ledger, progress) instead of ending the stack's lane."""
        try:
            return self.run(name, args)
        except DemoFailed as exc:
            if self.stop.is_set():
                raise
            self.attempt.fail(self.stack, name, str(exc))
            self.progress.failed += 1
            _say(f"{self.stack}: {name} FAILED (the demo goes on without it): {str(exc).splitlines()[0]}")
            return None
        finally:
            self.progress.finished += 1

    def all(self) -> list[Path]:
        w = self.w
        lin, lout = w.lengths
        batch_runs = []
        for n in w.batch_levels:  # one run per level: each stage is exactly one static batch of n
            path = self._try(f"batch-{n}", [
                "--mode", "batch", "--levels", str(n), "--requests-per-level", str(n), "--input-len", str(lin),
                "--output-len", str(lout), "--seed", "1", "--scrape-interval", f"{w.batch_scrape_s:g}"])
            if path is not None:
                batch_runs.append(path)
        if batch_runs:
            rates = rate_levels(batch_runs, w.rate_fractions)
            self._try("rate", [
                "--mode", "rate", "--arrival", "poisson", "--levels", ",".join(f"{r:g}" for r in rates),
                "--duration", f"{w.rate_seconds:g}", "--input-len", str(lin), "--output-len", str(lout),
                "--seed", "2"])
        else:
            self.attempt.fail(self.stack, "rate", "no batch run finished, so the rate sweep could not be sized")
            self.progress.finished += 1
            self.progress.failed += 1
        pin, pout = w.prefill_lengths
        for n in w.prefill_levels:
            self._try(f"prefill-{n}", [
                "--mode", "batch", "--levels", str(n), "--requests-per-level", str(n * w.prefill_batches),
                "--input-len", str(pin), "--output-len", str(pout), "--seed", "3"])
        self.progress.done = True
        self.progress.step = "done"
        return self.progress.runs


def _stop_tree(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the load tester (it stops its own simulated endpoint and writes a partial summary); after
    ``grace`` s, SIGKILL its whole process group (``start_new_session``): everything it started."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
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
    """Every ``every`` s: runs finished of the total, an ETA from the pace so far, and each stack's step."""
    t0 = time.monotonic()
    total = sum(p.total for p in progress)
    while not stop.wait(every):
        done = sum(p.finished for p in progress)
        failed = sum(p.failed for p in progress)
        elapsed = time.monotonic() - t0
        eta = f", ETA {elapsed / done * (total - done):.0f} s" if done else ""
        parts = [f"{p.stack}: {p.step}" + ("" if p.done else f" ({_count_lines(p.run_dir)} req done)")
                 for p in progress]
        _say(f"{elapsed:4.0f}s  runs {done}/{total}" + (f" ({failed} failed)" if failed else "") + eta
             + "  " + " | ".join(parts))


def cpu_headroom(seconds: float = 1.0) -> float:
    """Idle cores right now: (1 − busy share over ``seconds``, from /proc/stat) × cores; off Linux,
    cores minus the one-minute load average."""
    cores = os.cpu_count() or 1

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return idle, sum(fields)

    try:
        i0, t0 = sample()
        time.sleep(seconds)
        i1, t1 = sample()
        return cores * (i1 - i0) / max(1, t1 - t0)
    except (OSError, ValueError, IndexError):
        return max(0.0, cores - os.getloadavg()[0])


def parallel_lanes(groups: int, headroom_cores: float) -> int:
    """How many lanes load-test at once: as many as the idle cores can serve (each lane peaks at
    about LANE_CPU_CORES: its simulator and its load tester), at least one."""
    return max(1, min(groups, int(headroom_cores / LANE_CPU_CORES)))


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
    # the shared lane runs several stacks back to back, the longest lane: it starts first
    return ([fast] if fast else []) + out


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
    key = {"stacks": stacks, "slo": str(slo), **workloads.key()}
    attempt = Attempt.resume(results, key) if args.resume else Attempt.new(results, key)
    _say(f"stacks: {', '.join(stacks)}; SLO {slo}; attempt {attempt.dir}"
         f"{' (resumed)' if args.resume else ''}; report → {out / 'report.md'}")
    try:
        _say("step 1/3: offline plan of each stack")
        plans = plan_stacks(stacks, out)
        if not _module_available("loadtest", "run"):
            raise DemoFailed("the load tester (`python -m loadtest run`) is not available in this checkout: "
                             "the demo cannot measure anything and does not fake results")
        _say(f"step 2/3: the guide's workloads on each stack's simulated endpoint: {workloads.describe()} "
             f"(logs in {logs})")
        run_dirs = _load_test_all(stacks, attempt, logs, workloads)
    except DemoFailed as exc:
        print(f"demo FAILED: {exc}", file=sys.stderr)
        return EXIT_FAILED
    attempt.close()
    resume = f"python -m analysis demo --out {out} --resume" + (f" --stacks {args.stacks}" if args.stacks else "")
    if not run_dirs:
        print(f"demo FAILED: no run finished ({len(attempt.failed)} failed; ledger "
              f"{attempt.dir / LEDGER}); retry the failed runs with `{resume}`", file=sys.stderr)
        return EXIT_FAILED
    _say(f"step 3/3: compare {len(run_dirs)} runs" + (f" ({len(attempt.failed)} missing)" if attempt.failed else ""))
    analysis = analyse(load_runs([str(p) for p in run_dirs]), slo)
    path = write_report(analysis, out)
    _append_plans(path, plans)
    if attempt.failed:
        _append_missing(path, attempt, resume)
    _say("the guide's 7B and 70B cases asked of `stacks recommend` (the whole catalog, predicted)")
    picks = recommend_vs_measured(analysis.answers, slo, workloads.lengths)
    with path.open("a") as report:
        report.write("\n## What `stacks recommend` would deploy\n\n" + "\n\n".join(picks) + "\n")
    write_html(path)  # again: the plans, the missing runs and the recommendations were appended to report.md
    print()
    print_summary(analysis)
    for f in analysis.findings:
        print(f"  [{f.verdict}] {f.claim}: guide {f.guide}, here {f.measured}")
    print()
    for line in picks:
        print(textwrap.fill(line, width=110, subsequent_indent="    "))
    print()
    if attempt.failed:
        print(f"demo INCOMPLETE: {len(attempt.failed)} run(s) failed and are missing from the report "
              f"(listed in it, with their logs); retry them with `{resume}`", file=sys.stderr)
        return EXIT_FAILED
    _say(f"done in {time.monotonic() - t0:.0f} s. Report: {path} (figures and CSVs beside it; every number is "
         "modelled: decided on the performance model's replay of each stage, checked against the served endpoint)")
    return 0


def _append_missing(report: Path, attempt: Attempt, resume: str) -> None:
    """What this report lacks and why: the runs of the attempt that failed."""
    text = ("## Missing from this demo\n\nThese runs failed, so the tables, verdicts and findings above are "
            f"computed without them. Retry only them with `{resume}`.\n\n| run | why |\n|---|---|\n")
    text += "".join(f"| {run} | {why.splitlines()[0].replace('|', '/')} |\n"
                    for run, why in sorted(attempt.failed.items()))
    with open(report, "a") as f:
        f.write("\n" + text)


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


def _load_test_all(stacks: list[str], attempt: Attempt, logs: Path, workloads: Workloads) -> list[Path]:
    """Every stack's runs, lanes side by side; returns the runs that finished (failures are in the ledger)."""
    progress = {s: StackProgress(s, total=workloads.runs_per_stack) for s in stacks}
    stop, done = threading.Event(), threading.Event()
    monitor = threading.Thread(target=_monitor, args=(list(progress.values()), done), daemon=True)
    monitor.start()
    groups = lanes(stacks)
    headroom = cpu_headroom()
    parallel = parallel_lanes(len(groups), headroom)
    _say(f"lanes: {' | '.join(' → '.join(g) for g in groups)}; {parallel} at once ({headroom:.1f} idle cores "
         f"measured, about {LANE_CPU_CORES:g} core per lane)")

    def lane(names: list[str]) -> list[Path]:
        paths: list[Path] = []
        for name in names:
            paths += LoadRunner(name, attempt, logs, workloads, progress[name], stop).all()
        return paths

    pool = ThreadPoolExecutor(max_workers=parallel)
    try:
        futures = [pool.submit(lane, g) for g in groups]
        paths: list[Path] = []
        for fut in futures:
            paths += fut.result()
        return paths
    except BaseException:
        stop.set()  # Ctrl-C or a defect: stop every lane (their runs stay in the ledger for --resume)
        raise
    finally:
        pool.shutdown(wait=True)
        done.set()
