"""``python -m loadtest.simulator serve --stack NAME|FILE ...``: serve a stack's simulated endpoint.

Also ``predict`` (the model without HTTP) for a quick look at a stack and a workload. Exit codes:
0 ok (SIGTERM / Ctrl-C stop the server cleanly), 2 bad input (the message names the flag or field).
The API key, when the stack declares one, is read from the environment variable named by
``--api-key-env`` (default ``SIMULATOR_API_KEY``), never from the command line, where ``ps`` would
show it. The server exits by itself when the process that started it dies (a ``kill -9`` of the
load tester leaves no orphan serving on).
Once the server listens it prints ``listening: http://127.0.0.1:<port>`` (and ``metrics: <url>``)
on stdout, flushed, so a parent process can wait for that line.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import sys

from stacks.autoscale import HPA_SYNC_S
from stacks.errors import SpecErrors
from stacks.loader import load_stack_file, resolve_stack_arg
from stacks.spec import StackSpec

from ..helpfmt import DefaultsHelpFormatter
from .app import SimulatedEndpoint
from .efficiency import EfficiencyError
from .engine import EngineError
from .faults import FaultSpecError, parse_faults
from .fleet import DEFAULT_START_S
from .predict import Workload, predict


def _parser(serve_prog: str | None = None) -> argparse.ArgumentParser:
    """``serve_prog``: the usage line of ``serve`` when another command hands over to it
    (``python -m loadtest simulate`` is ``serve``)."""
    p = argparse.ArgumentParser(prog="python -m loadtest.simulator",
                                description="Serve a stack's simulated endpoint, timed by the performance model.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the stack's API on 127.0.0.1 (foreground)",
                       description="Serve the stack's simulated endpoint on 127.0.0.1, in the foreground, until "
                                   "interrupted. Example: --stack llama2-7b-g2 --port 0",
                       formatter_class=DefaultsHelpFormatter, prog=serve_prog)
    s.add_argument("--stack", required=True, help="a committed stack name or a path to a Pulumi.<stack>.yaml")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (keep it loopback: no TLS)")
    s.add_argument("--port", type=int, default=None,
                   help="HTTP port (default: the server's real port from the catalog; 0: pick a free one)")
    s.add_argument("--metrics-port", type=int, default=None,
                   help="metrics port for servers that serve metrics apart (Triton, JetStream)")
    s.add_argument("--seed", type=int, default=0, help="seed of the simulated token streams and fault draws")
    s.add_argument("--faults", default=None,
                   help="e.g. error_rate=0.05,statuses=429+500+503,disconnect_rate=0.01,slow_start=5,"
                        "stall_rate=0.001,stall_s=2")
    s.add_argument("--hpa-sync-s", type=float, default=HPA_SYNC_S,
                   help="an autoscaled stack: seconds between the emulated HPA's syncs (Kubernetes: 15)")
    s.add_argument("--replica-start-s", type=float, default=DEFAULT_START_S,
                   help="an autoscaled stack: seconds a new replica takes to become ready")
    s.add_argument("--static-batch", action="store_true",
                   help="static batching (the guide's batch comparison) instead of continuous batching")
    s.add_argument("--static-wait", type=float, default=0.05,
                   help="static batching: seconds without a new arrival before a partial batch starts")
    s.add_argument("--api-key-env", default=API_KEY_ENV, metavar="VAR",
                   help=f"environment variable holding the API key to enforce (default {API_KEY_ENV}); required "
                        "when the stack declares secrets.apiKey, as the real server would be started with it")
    s.add_argument("--no-parent-watch", action="store_true",
                   help="keep serving after the parent process exits (default: exit with it)")
    q = sub.add_parser("predict", help="print the model's prediction for a workload (no HTTP)")
    q.add_argument("--stack", required=True)
    q.add_argument("--mode", choices=["batch", "rate", "static"], default="batch")
    q.add_argument("--concurrency", type=int, default=16)
    q.add_argument("--rate", type=float, default=1.0)
    q.add_argument("--input-len", type=int, default=128)
    q.add_argument("--output-len", type=int, default=64)
    q.add_argument("--requests", type=int, default=0)
    q.add_argument("--seed", type=int, default=0)
    return p


API_KEY_ENV = "SIMULATOR_API_KEY"
PARENT_POLL_S = 0.5


#: the process that started this one, read at import (before anything can race with its death)
PARENT_PID = os.getppid()


async def _watch_parent(stop: asyncio.Event, parent: int = PARENT_PID) -> None:
    """Set ``stop`` once this process is re-parented: the process that started it has died (also
    if that happened before this task first ran)."""
    while not stop.is_set():
        if os.getppid() != parent:
            print("parent process exited: stopping", file=sys.stderr, flush=True)
            stop.set()
            return
        await asyncio.sleep(PARENT_POLL_S)


def _api_key(args: argparse.Namespace, spec: StackSpec) -> str | None:
    key = os.environ.get(args.api_key_env) or None
    if spec.api_key_key and key is None:
        raise ValueError(f"the stack declares an API key (secrets.apiKey: {spec.api_key_key}); set it in the "
                         f"environment variable {args.api_key_env} so the simulated server enforces it as the real "
                         "one does")
    return key if spec.api_key_key else None


def _load(stack: str) -> StackSpec:
    name, path = resolve_stack_arg(stack)
    return load_stack_file(path, name)


async def _serve(args: argparse.Namespace, spec: StackSpec) -> int:
    faults = parse_faults(args.faults)
    port = spec.server.http_port if args.port is None else args.port
    ep = SimulatedEndpoint(spec, host=args.host, port=port, metrics_port=args.metrics_port, seed=args.seed,
                           static_batch=args.static_batch, faults=faults, static_wait_s=args.static_wait,
                           api_key=_api_key(args, spec), hpa_sync_s=args.hpa_sync_s,
                           replica_start_s=args.replica_start_s)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await ep.start()
    except OSError as exc:
        print(f"error: --port {port}: cannot listen on {args.host}:{port} ({exc.strerror}); "
              "use another --port, or 0 for a free one", file=sys.stderr)
        return 2
    watcher = None if args.no_parent_watch else asyncio.create_task(_watch_parent(stop))
    gc.freeze()  # startup objects (catalog, specs, aiohttp) leave the collector's scans: shorter GC pauses
    print(f"listening: {ep.url}", flush=True)
    if ep.dialect.separate_metrics_port:
        print(f"metrics: {ep.metrics_url}", flush=True)
    print(f"simulating {spec.name}: {spec.model.hf_id} {spec.precision.name} on {spec.tensor_parallel} x "
          f"{spec.machine.chip.name} ({spec.server.name}, {'static' if args.static_batch else 'continuous'} "
          f"batching, KV {spec.sizing.kv_blocks} blocks)", file=sys.stderr, flush=True)
    await stop.wait()
    if watcher is not None:
        watcher.cancel()
    await ep.stop()
    lag = ep.runtime.lag.stats()
    print(f"stopped: {lag.emitted} tokens emitted, emission lag p50 {lag.p50_ms:.2f} ms, p99 {lag.p99_ms:.2f} ms, "
          f"max {lag.max_ms:.2f} ms", file=sys.stderr, flush=True)
    return 0


def main(argv: list[str] | None = None, serve_prog: str | None = None) -> int:
    args = _parser(serve_prog).parse_args(argv)
    try:
        spec = _load(args.stack)
        if args.command == "serve":
            return asyncio.run(_serve(args, spec))
        w = Workload(args.input_len, args.output_len, mode=args.mode, concurrency=args.concurrency, rate=args.rate,
                     requests=args.requests, seed=args.seed)
        print(json.dumps(predict(spec, w).as_dict(), indent=2))
        return 0
    except SpecErrors as exc:
        print(f"error: --stack {args.stack}: {exc}", file=sys.stderr)
        return 2
    except (FaultSpecError, EngineError, EfficiencyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
