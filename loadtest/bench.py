"""One load-test run, end to end: workload -> stages -> records -> summaries, all written as they happen.

The CLI builds the ``LoadConfig`` and the ``Target``; ``execute`` does the rest inside one asyncio
loop. It returns the stage summaries; ``summary.json`` on disk is always the latest state.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import platform
import resource
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from . import __version__, lora_mix
from .aggregate import summarize_stage
from .clock import Clock
from .config import LoadConfig
from .errors import Unreachable
from .export_vllm import vllm_result
from .http import Transport, make_transport
from .kube import KubeApi, deployment_path
from .local_tokenizer import load_local_tokenizer
from .metrics_scrape import Scraper
from .metrics_scrape import summarize as summarize_server
from .model_check import check_stage
from .pods import Timetable
from .progress import Progress
from .protocols import Dialect, make_dialect
from .results import FORMAT_VERSION, PREDICTED_FILE, REQUESTS_FILE, ResultsWriter, public_outputs, redact_url
from .runner import Runner
from .schedule import Scheduler, StageSpec, SweepPlanner, share_of, stage_span
from .setup_calls import DEFAULT_SETUP_TIMEOUT_S, call_with_retry
from .targets import Target, auth_headers
from .targets import stack_spec as load_stack_spec
from .workers import run_stage_in_workers
from .workloads import Tokenizer, Workload, sharegpt, synthetic

MAX_PROMPTS = 20_000


GC_INTERVAL_S = 30.0


@contextlib.asynccontextmanager
async def quiet_gc(interval: float = GC_INTERVAL_S) -> AsyncIterator[dict[str, Any]]:
    """No automatic cyclic-GC pauses inside a stage.

    CPython's collector stops the event loop for 10-40 ms when the heap is large, and every
    timestamp taken during the pause is late by that much (measured with
    benchmarks/timing_accuracy.py). Inside a stage the collector is off; the heap built before it
    is frozen (never rescanned), and a collection of only the new objects runs every ``interval``
    seconds (reported as ``gcCollections`` / ``gcPauseMaxMs``) so cycles cannot pile up.
    """
    stats: dict[str, Any] = {"gcCollections": 0, "gcPauseMaxMs": 0.0}
    gc.collect()
    gc.freeze()
    was_enabled = gc.isenabled()
    gc.disable()

    async def periodic() -> None:
        while True:
            await asyncio.sleep(interval)
            t0 = time.perf_counter()
            gc.collect()
            stats["gcCollections"] += 1
            stats["gcPauseMaxMs"] = max(stats["gcPauseMaxMs"], round(1000 * (time.perf_counter() - t0), 2))

    task = asyncio.create_task(periodic())
    try:
        yield stats
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if was_enabled:
            gc.enable()
        gc.unfreeze()


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def worker_common(cfg: LoadConfig, target: Target) -> dict[str, Any]:
    """What every worker process needs to send requests (handed over a pipe, never written)."""
    return {"baseUrl": target.base_url, "dialect": target.dialect, "model": target.model, "api": cfg.api,
            "ignoreEos": cfg.ignore_eos, "httpClient": cfg.http_client, "readTimeout": cfg.read_timeout,
            "requestTimeout": cfg.request_timeout, "grace": cfg.grace, "apiKey": target.api_key,
            "sampling": cfg.sampling.as_dict(), "extraBody": cfg.extra_body, "headers": cfg.headers}


def utc(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def environment() -> dict[str, Any]:
    import aiohttp
    import httpx

    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
            "httpx": httpx.__version__, "aiohttp": aiohttp.__version__}


@dataclass
class RunState:
    """Everything ``summary.json`` says, kept current as stages finish."""

    meta: dict[str, Any]
    stages: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sweep: dict[str, Any] | None = None
    workload: dict[str, Any] | None = None
    partial: bool = False
    complete: bool = False

    def summary(self) -> dict[str, Any]:
        return {**self.meta, "partial": self.partial, "complete": self.complete, "endedAt": utc(time.time()),
                "workload": self.workload, "stages": self.stages, "sweep": self.sweep, "warnings": self.warnings}


def run_meta(run_id: str, stack: str, target: Target, cfg: LoadConfig, clock: Clock,
             transport_name: str) -> dict[str, Any]:
    outputs = public_outputs(target.outputs)
    spec = (outputs or {}).get("spec")
    return {
        "formatVersion": FORMAT_VERSION,
        "runId": run_id,
        "stack": stack,
        "target": target.kind,
        "modelled": target.modelled,
        "tool": {"name": "gke-llm-bench loadtest", "version": __version__, "httpClient": transport_name},
        "environment": environment(),
        "startedAt": utc(clock.wall_origin),
        "clockOrigin": clock.wall_origin,
        "perfCounterOrigin": clock.origin,
        "endpoint": {"baseUrl": redact_url(target.base_url), "dialect": target.dialect, "model": target.model,
                     "api": cfg.api, "metricsUrl": redact_url(target.metrics_url)},
        "config": cfg.as_dict(),
        "outputs": outputs,
        "spec": spec,
        "costPerHour": (outputs or {}).get("costPerHour"),
    }


async def probe_tokenizer(transport: Transport, target: Target, dialect: Dialect,
                          timeout: float = DEFAULT_SETUP_TIMEOUT_S) -> Tokenizer | None:
    """The server's own token counter, when its protocol has one (vLLM's ``/tokenize``, with the
    chat template for ``--api chat``; TGI's ``/tokenize``): exact input lengths. None when the
    protocol or this server has none (a 4xx on the probe). Calls are retried (``setup_calls``)."""
    probe = dialect.tokenize_request("hello")
    if probe is None:
        return None
    base = target.base_url.rstrip("/")
    headers = {"Content-Type": "application/json", **auth_headers(target.api_key)}

    async def ask(text: str) -> tuple[int, int | None]:
        request = dialect.tokenize_request(text)
        assert request is not None
        path, body = request
        payload = json.dumps(body).encode()
        status, raw = await call_with_retry(f"POST {path}", lambda: transport.post_json(base + path, payload, headers),
                                            timeout)
        try:
            return status, dialect.token_count(json.loads(raw)) if status == 200 else None
        except ValueError:
            return status, None

    status, n = await ask("hello")
    if status != 200 or n is None:
        return None
    sem = asyncio.Semaphore(32)

    async def one(text: str) -> int:
        async with sem:
            status, n = await ask(text)
        if n is None:
            path = probe[0]
            raise Unreachable(f"POST {path} answered HTTP {status} without a token count", "check the server's logs")
        return n

    async def tokenize(texts: list[str]) -> list[int]:
        return list(await asyncio.gather(*(one(t) for t in texts)))

    return tokenize


def replica_source(target: Target, warnings: list[str]) -> tuple[KubeApi, str] | None:
    """Where an autoscaled server's replica counts can be read, or None (with a warning when they
    matter but cannot be read)."""
    if not target.autoscaled:
        return None
    outputs = target.outputs or {}
    api = KubeApi.locate(target.kube_api)
    if api is None or not outputs.get("deployment"):
        warnings.append("the server autoscales but its replicas are not recorded: give --kube-api "
                        "(e.g. `kubectl proxy` and --kube-api http://127.0.0.1:8001)")
        return None
    return api, deployment_path(outputs["namespace"], outputs["deployment"])


def expected_requests(cfg: LoadConfig, levels: list[float], mode: str) -> int:
    total = 0
    for level in levels:
        count, duration = cfg.stage_bound(mode, level)
        per_s = level  # rate: requests per second; batch: a guess of one request per slot per second
        total += (count or int(per_s * (duration or 0))) + int(per_s * cfg.warmup)
        total += int(level) if mode == "batch" else 0
    return max(1, min(MAX_PROMPTS, total))


async def build_workload(cfg: LoadConfig, count: int, tokenize: Tokenizer | None,
                         output_len_override: int | None) -> Workload:
    if cfg.dataset:
        return await sharegpt(cfg, cfg.dataset, count, tokenize, output_len=output_len_override)
    return await synthetic(cfg, count, tokenize)


def stage_plan(cfg: LoadConfig) -> tuple[str, list[float]]:
    mode = cfg.sweep_of if cfg.mode == "sweep" else cfg.mode
    return mode, cfg.levels


async def execute(cfg: LoadConfig, target: Target, writer: ResultsWriter, state: RunState, clock: Clock,
                  progress: Progress, stop: asyncio.Event, output_len_override: int | None = None,
                  export: str | None = None, force: asyncio.Event | None = None) -> RunState:
    transport = make_transport(cfg.http_client, read_timeout=cfg.read_timeout)
    dialect = make_dialect(target.dialect, target.model, cfg.api, cfg.ignore_eos, cfg.sampling, cfg.extra_body)
    # setup calls wait for the server at most --setup-timeout; their HTTP client reads no longer than that
    aux = make_transport("httpx", read_timeout=min(30.0, cfg.setup_timeout))
    scraper: Scraper | None = None
    try:
        mode, levels = stage_plan(cfg)
        stack_spec = load_stack_spec(state.meta["stack"]) if cfg.model_check else None
        planner = SweepPlanner(mode, levels or None, cfg.sweep_max_stages) if cfg.mode == "sweep" else None
        planned = levels if planner is None else (levels or [2.0 ** k for k in range(cfg.sweep_max_stages)])
        tokenize = await probe_tokenizer(aux, target, dialect, cfg.setup_timeout)
        counted_by = "server" if tokenize is not None else None  # what counts the input tokens
        if tokenize is not None and cfg.tokenizer:
            state.warnings.append(f"--tokenizer {cfg.tokenizer} not used: the server counts tokens itself "
                                  "(its /tokenize applies its own template and special tokens)")
        elif cfg.tokenizer:
            tokenize, counted_by = load_local_tokenizer(cfg.tokenizer), cfg.tokenizer
        if cfg.lora_mix:
            await lora_mix.check_served(aux, target, dialect, cfg.lora_mix, cfg.setup_timeout)
        workload = await build_workload(cfg, expected_requests(cfg, planned, mode), tokenize, output_len_override)
        lora_mix.assign(workload, cfg.lora_mix, cfg.seed)
        workload.tokenizer = counted_by
        tokenizer_id = target.model if counted_by == "server" else counted_by  # vLLM bench's tokenizer_id
        state.workload = workload.describe()
        if tokenize is None:
            state.warnings.append("input lengths are estimates (the server has no token counter); the true counts "
                                  "come from the server's usage where it reports them, else each request records "
                                  "the estimate with inputTokensEstimated: true")
        elif workload.inexact:
            state.warnings.append(f"{workload.inexact} of {len(workload.prompts)} prompts could not be fitted to the "
                                  "exact input length; each request records its measured inputTokensExpected")
        deployment = replica_source(target, state.warnings)
        if target.metrics_url:
            scraper = Scraper(target.metrics_url, aux, clock, cfg.scrape_interval, writer.write_scrape,
                              headers=auth_headers(target.api_key), deployment=deployment)
            if await scraper.scrape_once() is None:
                state.warnings.append(f"server metrics unavailable ({scraper.last_error}); continuing without them")
                await scraper.stop()  # closes its Kubernetes API client too
                scraper = None
            else:
                scraper.start()
        runner = Runner(target.base_url, dialect, transport, writer, clock, api_key=target.api_key,
                        request_timeout=cfg.request_timeout, headers=cfg.headers)
        scheduler = Scheduler(runner, workload, clock, stop, grace=cfg.grace, force=force)
        pod = state.meta.get("pod")
        timetable = (Timetable(pod["startAt"] - clock.wall_origin, cfg.cooldown, cfg.stage_gap)
                     if pod is not None else None)
        index = next_index = 0
        queue = list(levels) if planner is None else []
        while not stop.is_set():
            level = (queue.pop(0) if queue else None) if planner is None else planner.next_level()
            if level is None:
                break
            count, duration = cfg.stage_bound(mode, level)
            arrival = "closed" if mode == "batch" else cfg.arrival
            spec = StageSpec(id=f"{index}-{mode}-{level:g}", mode=mode, level=level, arrival=arrival, count=count,
                             duration=duration, warmup=cfg.warmup, seed=cfg.seed + index, burstiness=cfg.burstiness,
                             normalize=cfg.normalize_arrivals, ramp_up=cfg.ramp_up,
                             max_concurrency=cfg.max_concurrency)
            whole = spec
            if timetable is not None and pod is not None:  # one pod's share, on the pods' shared timetable
                spec = share_of(replace(spec, start_at=timetable.next), pod["index"], pod["count"])
            if scraper:
                scraper.stage = spec.id
            counters = progress.stage_started(spec.id, f"{mode} {level:g}")
            runner.on_sent, runner.on_done = counters.on_sent, counters.on_done
            cpu0, wall0 = time.process_time(), clock.now()
            if cfg.workers > 1:
                children0 = _children_cpu()
                run = await run_stage_in_workers(spec, cfg.workers, workload, worker_common(cfg, target),
                                                 writer.dir / "requests.jsonl", clock, stop,
                                                 force or asyncio.Event(), next_index)
                wall = max(clock.now() - wall0, 1e-9)
                per_worker = (_children_cpu() - children0) / cfg.workers
                client = {"cpuPercent": round(100 * per_worker / wall, 1), "httpClient": transport.name,
                          "workers": cfg.workers}
            else:
                scheduler._index = next_index
                async with quiet_gc() as gc_stats:
                    run = await scheduler.run_stage(spec)
                wall = max(clock.now() - wall0, 1e-9)
                client = {"cpuPercent": round(100 * (time.process_time() - cpu0) / wall, 1),
                          "httpClient": transport.name, **gc_stats}
            # the scheduler knows every share's numbers (a pod's records hold only its own)
            next_index = max([next_index - 1, *(r.i for r in run.records or [])]) + 1
            next_index = scheduler._index = max(next_index, scheduler._index)
            if scraper:
                await scraper.scrape_once()  # one sample at the stage's end
            server = summarize_server(scraper.for_stage(spec.id)) if scraper else None
            summary = summarize_stage(stage_id=spec.id, mode=mode, level=level, arrival=arrival,
                                      records=run.records or [], start=run.start, end=run.end, slo=cfg.slo,
                                      interrupted=run.interrupted, server=server, client=client)
            if cfg.model_check:
                predicted = check_stage(stack_spec, summary, run.records or [], modelled_target=target.modelled,
                                        slo=cfg.slo, max_concurrency=cfg.max_concurrency)
                if predicted:
                    writer.write_predicted(predicted)
                    writer.write_columns(PREDICTED_FILE, spec.id, predicted)
            writer.write_columns(REQUESTS_FILE, spec.id, run.records or [])
            state.stages.append(summary)
            if planner is not None:
                planner.record(summary, all(v is not False for v in (summary["sloMet"] or {}).values()))
                state.sweep = {"of": mode, "knee": planner.knee, "stopReason": planner.reason,
                               "history": [{"level": lv, "good": g, "why": w} for lv, g, w in planner.history]}
            writer.write_json("summary.json", state.summary())
            if export == "vllm":
                burst = cfg.burstiness if arrival == "gamma" else (1.0 if arrival == "poisson" else "inf")
                writer.write_json(f"vllm/{spec.id}.json", vllm_result(
                    summary, run.records or [], target.model, target.dialect, cfg.api, burst, cfg.max_concurrency,
                    tokenizer_id))
            progress.stage_finished(summary)
            index += 1
            if timetable is not None:
                timetable.advance(stage_span(whole) or max(run.dispatch_end - run.start, 0.0))
                continue  # the timetable holds the cooldown
            if cfg.cooldown and not stop.is_set():
                end = clock.now() + cfg.cooldown
                while not stop.is_set() and clock.now() < end:
                    await asyncio.sleep(min(0.25, end - clock.now()))
        state.partial = stop.is_set()
        state.complete = not state.partial
        if workload.reused:
            state.warnings.append(f"{workload.reused} requests reused a prompt already sent (pool of "
                                  f"{len(workload.prompts)}); with prefix caching their TTFT is optimistic")
        state.workload = workload.describe()
        if scraper and scraper.failures:
            state.warnings.append(f"{scraper.failures} metrics scrapes failed; last: {scraper.last_error}")
        writer.write_json("summary.json", state.summary())
        return state
    finally:
        if scraper:
            await scraper.stop()
        await transport.aclose()
        await aux.aclose()
