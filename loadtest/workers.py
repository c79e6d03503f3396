"""``--workers W``: one stage's load spread over W processes, so the load generator uses every core.

The parent keeps everything that is per run (target, workload, results directory, server-metrics
scraping, summaries). For each stage it starts W processes (``python -m loadtest.workers``), hands
each its job on stdin (endpoint, dialect, the prompts, its share of the stage: ``schedule.share_of``)
and starts them together once all are ready. They share the parent's clock origin (perf_counter is
CLOCK_MONOTONIC: one clock for every process on the host), so their times are directly comparable,
and they append their records to the run's ``requests.jsonl`` with one ``write()`` per line on an
``O_APPEND`` descriptor, which Linux keeps whole between processes. Shares:
  rate R      -> every worker draws the stage's one seeded schedule and sends arrivals g = k mod W
                 (the union is exactly the requested process, constant or random);
  batch N     -> N clients and the count split as evenly as possible; duration and warmup are the stage's.
Request g gets prompt g and number first_index + g in every worker, so numbers stay unique. The
parent reads the stage's records back from the file to summarize them. A worker dies with its
parent (PR_SET_PDEATHSIG). Pods in a cluster run the same shares (``loadtest.pods``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .clock import Clock
from .http import make_transport
from .protocols import Prompt, Sampling, make_dialect
from .records import RequestRecord
from .runner import Runner
from .schedule import Scheduler, StageRun, StageSpec, share_of
from .workloads import Workload


class AppendWriter:
    """``write_request`` as one ``os.write`` per line on an O_APPEND file shared by processes."""

    def __init__(self, path: Path):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write_request(self, rec: RequestRecord) -> None:
        line = json.dumps(rec.as_dict(), separators=(",", ":"), allow_nan=False).encode() + b"\n"
        view = memoryview(line)
        while view:
            view = view[os.write(self.fd, view):]

    def close(self) -> None:
        os.close(self.fd)


def worker_jobs(spec: StageSpec, workers: int, prompts: list[Prompt], first_index: int) -> list[dict[str, Any]]:
    wire = [[p.text, p.input_tokens, p.output_len, p.input_estimate, p.adapter] for p in prompts]
    return [{"stage": asdict(share_of(spec, k, workers)), "index": first_index, "prompts": wire}
            for k in range(workers)]


async def run_stage_in_workers(spec: StageSpec, workers: int, workload: Workload, common: dict[str, Any],
                               requests_path: Path, clock: Clock, stop: asyncio.Event, force: asyncio.Event,
                               first_index: int) -> StageRun:
    """Run one stage in ``workers`` processes; return its records read back from the file."""
    offset = requests_path.stat().st_size if requests_path.exists() else 0
    jobs = worker_jobs(spec, workers, workload.rotated(), first_index)
    procs = []
    for job in jobs:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "loadtest.workers", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            start_new_session=True)  # our own SIGINT handling forwards Ctrl-C, once, with its meaning
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({**common, **job, "requestsPath": str(requests_path),
                                     "origin": clock.origin, "wallOrigin": clock.wall_origin}).encode() + b"\n")
        await proc.stdin.drain()
        procs.append(proc)
    for proc in procs:  # each prints "ready" once its imports and client are set up
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"a load worker failed to start (exit {await proc.wait()})")
    start_at = clock.now() + 0.25  # time for every worker to read it before it passes
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(f"{start_at}\n".encode())
        await proc.stdin.drain()
    forwarded = {"stop": False, "force": False}

    async def forward() -> None:
        while True:
            for flag, event, sig in (("stop", stop, signal.SIGINT), ("force", force, signal.SIGINT)):
                if event.is_set() and not forwarded[flag]:
                    forwarded[flag] = True
                    for proc in procs:
                        with contextlib.suppress(ProcessLookupError):
                            proc.send_signal(sig)
            await asyncio.sleep(0.05)

    forwarder = asyncio.create_task(forward())
    try:
        await asyncio.gather(*(p.wait() for p in procs))
    finally:
        forwarder.cancel()
    records = []
    with open(requests_path, "rb") as f:
        f.seek(offset)
        for line in f:
            if line.endswith(b"\n"):
                d = json.loads(line)
                if d["stage"] == spec.id:
                    records.append(RequestRecord.from_dict(d))
    # the union of the shares numbers first_index + g for every global g used
    workload.advance(max((r.i for r in records), default=first_index - 1) + 1 - first_index)
    records.sort(key=lambda r: r.i)
    starts = start_at
    run = StageRun(spec, start=starts, measure_from=starts + spec.warmup)
    run.records = records
    run.end = clock.now()
    run.dispatch_end = max((r.sent or starts for r in records), default=starts)
    run.interrupted = stop.is_set()
    return run


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


async def _worker(job: dict[str, Any]) -> int:
    from .bench import quiet_gc

    clock = Clock(job["origin"], job["wallOrigin"])
    dialect = make_dialect(job["dialect"], job["model"], job["api"], job["ignoreEos"],
                           Sampling(**job.get("sampling", {})), job.get("extraBody"))
    transport = make_transport(job["httpClient"], read_timeout=job["readTimeout"])
    writer = AppendWriter(Path(job["requestsPath"]))
    runner = Runner(job["baseUrl"], dialect, transport, writer, clock,  # type: ignore[arg-type]
                    api_key=job.get("apiKey"), request_timeout=job["requestTimeout"], headers=job.get("headers"))
    prompts = [Prompt(*p) for p in job["prompts"]]
    stop, force = asyncio.Event(), asyncio.Event()
    scheduler = Scheduler(runner, Workload(prompts, False, "worker"), clock, stop, grace=job["grace"], force=force)
    scheduler._index = job["index"]
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        (force if stop.is_set() else stop).set()

    loop.add_signal_handler(signal.SIGINT, on_signal)
    loop.add_signal_handler(signal.SIGTERM, on_signal)
    print("ready", flush=True)
    start_at = float((await loop.run_in_executor(None, sys.stdin.readline)).strip())
    spec = StageSpec(**{**job["stage"], "start_at": start_at})
    try:
        async with quiet_gc():
            await scheduler.run_stage(spec)
    finally:
        await transport.aclose()
        writer.close()
    return 130 if stop.is_set() else 0


def main() -> int:
    _die_with_parent()
    job = json.loads(sys.stdin.readline())
    return asyncio.run(_worker(job))


if __name__ == "__main__":
    sys.exit(main())
