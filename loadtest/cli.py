"""``python -m loadtest run|simulate``: the command-line contract (README "Load testing").

Exit codes: 0 ok; 2 bad input (the message names the flag or file field); 3 endpoint unreachable
(no results directory is created); 130 interrupted (a partial summary is written). The last stdout
line of ``run`` is ``results: <dir>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import NoReturn

from . import pods
from .bench import RunState, execute, run_meta
from .clock import Clock
from .config import (
    ARRIVALS,
    MODES,
    LoadConfig,
    parse_extra_body,
    parse_headers,
    parse_length,
    parse_levels,
    parse_slo,
)
from .errors import EXIT_INTERRUPTED, EXIT_OK, BadInput, LoadTestError
from .helpfmt import DefaultsHelpFormatter
from .http import TRANSPORTS
from .local_tokenizer import tokenizer_file
from .lora_mix import parse_lora_mix
from .progress import Progress
from .protocols import DIALECTS
from .results import ResultsWriter, new_run_id
from .targets import Target, gke_target, sim_target, url_target


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # exit 2 with the usage, as argparse does, but our wording
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m loadtest", description="Benchmark an LLM serving endpoint.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a load test against a stack's endpoint", formatter_class=DefaultsHelpFormatter,
                       epilog="examples:\n"
                              "  python -m loadtest run --stack llama2-7b-g2 --target sim --mode batch "
                              "--levels 16,32,64\n"
                              "  python -m loadtest run --stack llama2-7b-g2 --outputs out.json --mode sweep "
                              "--slo ttft_p99=2s,tpot_p50=100ms")
    r.add_argument("--stack", required=True, help="stack name (stacks/Pulumi.<stack>.yaml) or its file")
    r.add_argument("--target", choices=("gke", "sim"), default="gke",
                   help="gke: the deployed endpoint from the stack outputs; sim: a local simulated endpoint")
    r.add_argument("--outputs", help="stack outputs saved from `pulumi stack output --json`")
    r.add_argument("--endpoint", help="any base URL instead of the stack outputs (needs --dialect, --model)")
    r.add_argument("--in-cluster", action="store_true",
                   help="inside the cluster (the load generator's pods): reach the server at the in-cluster address "
                        "from the outputs (endpoint, metricsUrl), not through a port-forward")
    r.add_argument("--dialect", choices=sorted(DIALECTS), help="--endpoint: the server's wire protocol")
    r.add_argument("--model", help="model name the server answers to")
    r.add_argument("--mode", required=True, choices=MODES,
                   help="batch: N concurrent clients; rate: open-loop arrivals; sweep: raise the load to the knee")
    r.add_argument("--levels", help="batch: concurrencies N (e.g. 16,32,64); rate: req/s (e.g. 1,2,4); sweep: optional "
                                    "levels to try in order (default: doubling from 1)")
    r.add_argument("--arrival", choices=ARRIVALS, default="constant",
                   help="rate mode: constant spacing, poisson, or gamma (shape --burstiness) (default: constant)")
    r.add_argument("--burstiness", type=float, default=1.0,
                   help="--arrival gamma: the gaps' shape; < 1 burstier, 1 = Poisson (default: 1)")
    r.add_argument("--normalize-arrivals", action="store_true",
                   help="scale a stage's random gaps so its N requests span exactly N/R, as vllm bench serve does")
    r.add_argument("--ramp-up", type=float, default=0.0, metavar="SECONDS",
                   help="rate mode: raise the rate linearly from 0 to each level over this many seconds (default: 0)")
    r.add_argument("--max-concurrency", type=int, metavar="N",
                   help="rate mode: at most N requests in flight; later ones wait (default: no cap)")
    r.add_argument("--requests-per-level", type=int,
                   help="measured requests per stage (default, when neither this nor --duration is given: "
                        "batch max(64, 4 x N), rate max(50, 20 x R), i.e. about 20 s of arrivals; e.g. 512)")
    r.add_argument("--duration", type=float,
                   help="measured seconds of sending per stage, instead of a request count (e.g. 60)")
    r.add_argument("--warmup", type=float, default=0.0, help="seconds at each stage's start excluded from stats")
    r.add_argument("--cooldown", type=float, default=0.0, help="idle seconds between stages")
    r.add_argument("--input-len", default="128", help="input tokens: 128 or a uniform range 64:256")
    r.add_argument("--output-len", default=None, help="output tokens: 64 (default) or a range 32:128")
    r.add_argument("--dataset", help="ShareGPT-format JSON file of prompts")
    r.add_argument("--lora-mix", metavar="NAME=W,...",
                   help="split the requests across the server's LoRA adapters by weight, e.g. sql=0.5,base=0.5 "
                        "(base: the base model); each record names its adapter")
    r.add_argument("--tokenizer", metavar="PATH",
                   help="a local Hugging Face tokenizer (a directory with tokenizer.json, or the file): exact input "
                        "lengths for servers without a token counter (Triton, JetStream); nothing is downloaded")
    r.add_argument("--prefix-len", type=int, default=0, help="shared-prefix workload: tokens shared per group")
    r.add_argument("--prefix-groups", type=int, default=1, help="shared-prefix workload: number of prefixes")
    r.add_argument("--seed", type=int, default=0, help="seed of the workload's lengths, prompts and arrivals")
    r.add_argument("--slo", help="goodput and sweep limits, e.g. ttft_p99=2s,tpot_p50=100ms,error_rate=1%% "
                                 "(metrics: ttft tpot ntpot itl e2e e2e_sched; stats: mean p50 p90 p95 p99 max; "
                                 "the grammar of analysis --slo)")
    r.add_argument("--results-dir", default="results", help="runs are written to <dir>/<stack>/<run-id>/")
    r.add_argument("--run-id", help="the run's directory name (default: a UTC timestamp, e.g. 20261202T120000Z)")
    r.add_argument("--api", choices=("completions", "chat"), default="completions")
    r.add_argument("--export", choices=("vllm",), help="also write vllm-bench-serve-style JSON per stage")
    r.add_argument("--metrics-url", help="server Prometheus metrics URL (default: from the outputs / dialect)")
    r.add_argument("--no-metrics", action="store_true", help="do not scrape server metrics")
    r.add_argument("--kube-api", metavar="URL",
                   help="the Kubernetes API, for an autoscaled server's replica counts over time (e.g. run "
                        "`kubectl proxy` and give http://127.0.0.1:8001; default: the in-cluster API in a pod)")
    r.add_argument("--scrape-interval", type=float, default=1.0, help="seconds between server-metrics scrapes")
    r.add_argument("--no-progress", action="store_true", help="no live progress line (e.g. in CI logs)")
    r.add_argument("--no-ignore-eos", action="store_true", help="let the model stop at EOS (lengths may be shorter)")
    r.add_argument("--temperature", type=float, help="sampling temperature (default: the server's)")
    r.add_argument("--top-p", type=float, help="nucleus sampling (default: the server's)")
    r.add_argument("--top-k", type=int, help="top-k sampling (default: the server's)")
    r.add_argument("--sampling-seed", type=int, help="the server's sampling seed (default: none; --seed seeds the "
                                                     "workload)")
    r.add_argument("--extra-body", metavar="JSON", help="""JSON object merged into every request body, e.g. """
                                                        """'{"repetition_penalty": 1.1}'""")
    r.add_argument("--header", action="append", metavar="NAME:VALUE",
                   help="extra HTTP header on every request (repeatable); values are not recorded")
    r.add_argument("--request-timeout", type=float, default=600.0, help="seconds one request may take in all")
    r.add_argument("--read-timeout", type=float, default=120.0,
                   help="seconds of server silence before a request is recorded as stalled")
    r.add_argument("--setup-timeout", type=float, default=30.0,
                   help="seconds the calls before measuring (/tokenize) keep retrying a failing server (default: 30)")
    r.add_argument("--no-model-check", dest="model_check", action="store_false",
                   help="do not replay each stage on the stack's performance model (by default every stage gets "
                        "the model's figures, its error and, on --target sim, a hostBound verdict)")
    r.add_argument("--grace", type=float, default=5.0, help="seconds in-flight requests get after Ctrl-C")
    r.add_argument("--http-client", choices=sorted(TRANSPORTS), default="aiohttp",
                   help="the HTTP client library that sends the load")
    r.add_argument("--workers", type=int, default=1,
                   help="load-generating processes per stage (1: one process; e.g. 2 on a 2-core machine)")
    r.add_argument("--pods", type=int, metavar="N",
                   help="run one pod's share of a load test N pods run together (an Indexed Job; see "
                        "docs/in-cluster.md): the same seeded schedule in every pod, arrivals g = k mod N")
    r.add_argument("--pod-index", type=int, metavar="K",
                   help="--pods: this pod's share (default: $JOB_COMPLETION_INDEX, set by the Job controller)")
    r.add_argument("--start-at", metavar="WHEN",
                   help="--pods: when stage 0 starts in every pod: epoch seconds, 2026-12-03T10:00:00Z, or "
                        "job+SECONDS (the Job's creation time, read from the Kubernetes API, + SECONDS)")
    r.add_argument("--stage-gap", type=float, default=15.0, metavar="SECONDS",
                   help="--pods: seconds between a stage's last scheduled send and the next stage's start")
    r.add_argument("--sweep-of", choices=("rate", "batch"), default="rate", help="what --mode sweep raises")
    r.add_argument("--sweep-max-stages", type=int, default=8, help="--mode sweep: most stages, bisection included")
    m = sub.add_parser("merge", help="merge the load-generator pods' shares of one run into one run directory",
                       formatter_class=DefaultsHelpFormatter,
                       epilog="example:\n  python -m loadtest merge gs://my-bucket/r1 --results-dir results")
    m.add_argument("source", help="the run's prefix: gs://<bucket>/<run-id>, or a local directory of the same layout")
    m.add_argument("--results-dir", default="results", help="the merged run goes to <dir>/<stack>/<run-id>/")
    m.add_argument("--partial", action="store_true", help="merge even if some pods wrote nothing (they are listed)")
    m.add_argument("--no-model-check", dest="model_check", action="store_false",
                   help="do not replay the merged stages on the stack's performance model")
    u = sub.add_parser("upload", help="stream a run directory to a bucket as it is written (the pods' sidecar)",
                       formatter_class=DefaultsHelpFormatter)
    u.add_argument("root", help="the results root the load tester writes (--results-dir)")
    u.add_argument("dest", help="where this pod's share goes: gs://<bucket>/<run-id>/<index> or a local directory")
    u.add_argument("--interval", type=float, default=5.0, help="seconds between uploads")
    u.add_argument("--once", action="store_true", help="upload what is there now and exit")
    s = sub.add_parser("simulate", help="serve the stack's simulated endpoint (foreground)", add_help=False)
    s.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def config_from_args(a: argparse.Namespace) -> tuple[LoadConfig, int | None]:
    if a.mode in ("batch", "rate") and not a.levels:
        raise BadInput(f"--mode {a.mode} needs --levels", "e.g. --levels 16,32,64 (batch) or --levels 1,2,4 (rate)")
    mode_for_levels = a.sweep_of if a.mode == "sweep" else a.mode
    output_len = parse_length("--output-len", a.output_len or "64")
    cfg = LoadConfig(
        mode=a.mode, levels=parse_levels(a.levels, mode_for_levels) if a.levels else [], arrival=a.arrival,
        requests_per_level=a.requests_per_level, duration=a.duration, warmup=a.warmup, cooldown=a.cooldown,
        input_len=parse_length("--input-len", a.input_len), output_len=output_len, dataset=a.dataset,
        tokenizer=a.tokenizer, lora_mix=parse_lora_mix(a.lora_mix),
        prefix_len=a.prefix_len, prefix_groups=a.prefix_groups, seed=a.seed, slo=parse_slo(a.slo), api=a.api,
        ignore_eos=not a.no_ignore_eos, request_timeout=a.request_timeout, read_timeout=a.read_timeout,
        grace=a.grace, scrape_interval=a.scrape_interval, http_client=a.http_client, sweep_of=a.sweep_of,
        sweep_max_stages=a.sweep_max_stages, workers=a.workers, burstiness=a.burstiness,
        normalize_arrivals=a.normalize_arrivals, ramp_up=a.ramp_up, max_concurrency=a.max_concurrency,
        temperature=a.temperature, top_p=a.top_p, top_k=a.top_k, sampling_seed=a.sampling_seed,
        extra_body=parse_extra_body(a.extra_body), headers=parse_headers(a.header), setup_timeout=a.setup_timeout,
        model_check=a.model_check, pods=a.pods, start_at=a.start_at, stage_gap=a.stage_gap,
    )
    if a.pods is not None:
        if a.target == "sim" and not a.endpoint:
            raise BadInput("--pods with --target sim: each pod would start a simulated endpoint of its own",
                           "start one (python -m loadtest simulate --stack S --port 8000) and give every pod "
                           "--endpoint http://127.0.0.1:8000 --dialect ... --model ...")
        cfg.pod_index = pods.pod_index(a.pod_index)
        cfg.model_check = False  # a share is not the stage the model would replay (the merge judges the whole)
    cfg.validate()
    if a.dataset and not Path(a.dataset).is_file():
        raise BadInput(f"--dataset {a.dataset}: no such file", "give the path to a ShareGPT-format JSON file")
    if a.tokenizer:
        tokenizer_file(a.tokenizer)  # refused before anything is sent
    override = output_len.lo if a.output_len and output_len.fixed else None
    return cfg, override


def resolve_target(a: argparse.Namespace) -> Target:
    if a.endpoint:
        if a.target == "sim" or a.outputs:
            raise BadInput("--endpoint cannot be combined with --target sim or --outputs", "choose one way to find it")
        return url_target(a.stack, a.endpoint, a.dialect, a.model, a.metrics_url)
    if a.target == "sim":
        if a.outputs:
            raise BadInput("--outputs cannot be combined with --target sim", "drop one of them")
        return sim_target(a.stack, a.metrics_url)
    return gke_target(a.stack, a.outputs, a.metrics_url, in_cluster=a.in_cluster)


def cmd_run(a: argparse.Namespace) -> int:
    cfg, output_override = config_from_args(a)
    if a.api and a.dialect in ("triton", "jetstream") and a.api != "completions":
        raise BadInput(f"--api {a.api}: {a.dialect} has only its native streaming API", "use --api completions")
    target = resolve_target(a)  # exit 3 here leaves nothing on disk
    try:
        if a.no_metrics or cfg.pod_index:  # of the pods, only pod 0 scrapes the server
            target.metrics_url = None
        if a.kube_api:
            target.kube_api = a.kube_api
        if a.no_metrics:
            target.metrics_url = None
        run_id = a.run_id or new_run_id()
        clock = Clock()
        try:
            writer = ResultsWriter(Path(a.results_dir), Path(a.stack).name.removesuffix(".yaml"), run_id)
        except FileExistsError as exc:
            raise BadInput(f"--run-id {run_id}: {exc}", "choose another --run-id or leave it out") from None
        state = RunState(run_meta(run_id, a.stack, target, cfg, clock, cfg.http_client))
        if cfg.pods is not None:
            assert cfg.start_at is not None
            started = pods.start_wall(cfg.start_at, a.setup_timeout)
            state.meta["pod"] = {"index": cfg.pod_index, "count": cfg.pods, "startAt": started,
                                 "startAtUtc": pods.utc_iso(started), "clock": pods.clock_sync()}
        writer.write_json("run.json", state.meta)
        progress = Progress(enabled=not a.no_progress)
        try:
            state = asyncio.run(_run_async(cfg, target, writer, state, clock, progress, output_override, a.export))
        finally:
            writer.close()
        if state.stages and not a.no_progress:
            progress.final_table(state.stages)
        for w in state.warnings:
            print(f"warning: {w}", file=sys.stderr)
        print(f"results: {writer.dir}")
        return EXIT_INTERRUPTED if state.partial else EXIT_OK
    finally:
        target.close()


async def _run_async(cfg: LoadConfig, target: Target, writer: ResultsWriter, state: RunState, clock: Clock,
                     progress: Progress, output_override: int | None, export: str | None) -> RunState:
    stop, force = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_sigint() -> None:
        if stop.is_set():
            force.set()
            progress.warn("interrupted again: cancelling in-flight requests now")
            return
        stop.set()
        progress.warn(f"interrupted: no new requests; in-flight ones get {cfg.grace:g} s (Ctrl-C again: none), "
                      "then a partial summary")

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, on_sigint)
        loop.add_signal_handler(signal.SIGTERM, on_sigint)
    task = asyncio.ensure_future(execute(cfg, target, writer, state, clock, progress, stop, output_override, export,
                                         force))
    try:
        return await task
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
            loop.remove_signal_handler(signal.SIGTERM)


def cmd_simulate(rest: list[str]) -> int:
    try:
        from .simulator.cli import main as simulator_main
    except ImportError as exc:
        print(f"error: the simulated endpoint is not available: {exc}", file=sys.stderr)
        return 2
    return int(simulator_main(["serve", *rest], serve_prog="python -m loadtest simulate") or 0)


def cmd_upload(a: argparse.Namespace) -> int:
    """The sidecar: SIGTERM (Kubernetes stopping it after the load tester exits) means one last sync."""
    from .bucket import watch

    stopping = {"now": a.once}

    def on_term(*_: object) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    shipped = watch(Path(a.root), a.dest, a.interval, lambda: stopping["now"])
    print(f"uploaded {shipped} bytes to {a.dest}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "simulate":
        return cmd_simulate(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.command == "merge":
            from .merge import merge

            print(f"results: {merge(args.source, Path(args.results_dir), args.partial, args.model_check)}")
            return EXIT_OK
        if args.command == "upload":
            return cmd_upload(args)
        return cmd_run(args)
    except LoadTestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
