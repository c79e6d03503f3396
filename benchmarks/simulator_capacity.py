"""Capacity of the simulated endpoint: concurrent streams it keeps on schedule on this machine.

    .venv/bin/python benchmarks/simulator_capacity.py [--levels 250,500,1000] [--requests-per-stream 3]

Starts ``python -m loadtest.simulator serve`` as a subprocess on a stack sized for many concurrent
sequences (Llama-2-70B on a3-highgpu-8g, vLLM, max batch 1024: its KV cache holds 1,024 x 192
tokens), then opens N streaming connections from a lean client (raw asyncio sockets, no JSON
parsing, so the client is not what is measured) that each send ``--requests-per-stream``
completions back to back. Reports, per level: tokens streamed, the simulator's own emission lag
(actual write time - the model's scheduled time, every token; from /sim/stats), and the
client-observed output throughput next to ``predict()``'s for the same workload, which shows the
served timing is the model's. The target: >= 1000 concurrent streams with emission lag p99 <= 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadtest.simulator.predict import Workload, predict  # noqa: E402
from stacks.loader import load_stack_file  # noqa: E402

STACK = """config:
  gcp:project: capacity-benchmark
  gcp:region: us-central1
  gcp:zone: us-central1-a
  gke-llm-bench:accelerator:
    machineType: {machine}
  gke-llm-bench:model:
    name: llama-2-70b
  gke-llm-bench:precision: {precision}
  gke-llm-bench:server:
    kind: vllm
    tensorParallel: 8
    maxBatch: 1024
    maxModelLen: 4096
"""
# Two speeds of the same 1,024-sequence server: 8 x H100 (fast steps: many tokens per second) and
# 8 x L4 at fp8 (slow steps: the same streams, fewer tokens per second).
STACKS = {"a3": ("a3-highgpu-8g", "bf16"), "g2": ("g2-standard-96", "fp8")}


async def stream_client(host: str, port: int, body: bytes, n: int, counts: list[int]) -> None:
    """One keep-alive connection sending ``n`` streamed requests in sequence; counts SSE events."""
    reader, writer = await asyncio.open_connection(host, port)
    req = (f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    try:
        for _ in range(n):
            writer.write(req)
            await reader.readuntil(b"\r\n\r\n")  # response headers
            events = 0
            tail = b""
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                data = tail + chunk
                events += data.count(b"data: ") - tail.count(b"data: ")
                if data.endswith(b"0\r\n\r\n") and b"[DONE]" in data[-40:]:
                    break
                tail = data[-16:]
            counts.append(events - 1)  # the last event is `data: [DONE]`
    finally:
        writer.close()


async def run_level(host: str, port: int, streams: int, per_stream: int, input_len: int, output_len: int) -> dict:
    body = json.dumps({"prompt": list(range(input_len)), "max_tokens": output_len, "stream": True,
                       "ignore_eos": True}).encode()
    counts: list[int] = []
    t0 = time.monotonic()
    await asyncio.gather(*(stream_client(host, port, body, per_stream, counts) for _ in range(streams)))
    return {"wall_s": time.monotonic() - t0, "requests": len(counts), "events": sum(counts)}


def stats(url: str) -> dict:
    import httpx

    return httpx.get(url + "/sim/stats", timeout=10).json()


def run_one(spec, stack_path: Path, level: int, args: argparse.Namespace) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "loadtest.simulator", "serve", "--stack", str(stack_path),
                             "--port", "0"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split(" ", 1)[1].strip()
        host, port = url.removeprefix("http://").split(":")
        res = asyncio.run(run_level(host, int(port), level, args.requests_per_stream, args.input_len,
                                    args.output_len))
        lag = stats(url)["emissionLag"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    model = predict(spec, Workload(args.input_len, args.output_len, mode="batch", concurrency=level,
                                   requests=level * args.requests_per_stream))
    tps = res["events"] / res["wall_s"]
    print(f"{level:>8} {res['requests']:>9} {res['events']:>9} {res['wall_s']:>7.2f} {tps:>9,.0f} "
          f"{model.output_tokens_per_s:>12,.0f} {lag['p50Ms']:>11.2f} {lag['p99Ms']:>11.2f} "
          f"{lag['maxMs']:>11.2f}", flush=True)
    return {"streams": level, "tokensPerS": tps, "modelTokensPerS": model.output_tokens_per_s, **lag}


def plot(rows: list[dict], path: Path) -> None:
    """Emission lag percentiles and streamed vs modelled throughput against concurrent streams."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    x = [r["streams"] for r in rows]
    ax1.plot(x, [r["p50Ms"] for r in rows], "o-", label="p50")
    ax1.plot(x, [r["p99Ms"] for r in rows], "s-", label="p99")
    ax1.axhline(2.0, color="grey", linestyle="--", label="2 ms target")
    ax1.set(xlabel="concurrent streams", ylabel="emission lag (ms)", title="Token emission lag")
    ax1.legend()
    ax2.plot(x, [r["tokensPerS"] for r in rows], "o-", label="streamed")
    ax2.plot(x, [r["modelTokensPerS"] for r in rows], "x--", label="model (predict)")
    ax2.set(xlabel="concurrent streams", ylabel="output tokens/s", title="Throughput: served vs model")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", default="100,250,500,1000")
    ap.add_argument("--stacks", default="a3", help="which of: " + ", ".join(STACKS))
    ap.add_argument("--requests-per-stream", type=int, default=2)
    ap.add_argument("--input-len", type=int, default=128)
    ap.add_argument("--output-len", type=int, default=64)
    ap.add_argument("--plot", type=Path, help="write a PNG figure of the results (e.g. docs/simulator-capacity.png)")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.stacks.split(","):
            machine, precision = STACKS[key]
            stack_path = Path(tmp) / f"Pulumi.capacity-70b-{key}.yaml"
            stack_path.write_text(STACK.format(machine=machine, precision=precision))
            spec = load_stack_file(stack_path)
            print(f"\nstack: {spec.name} ({spec.model.hf_id} {precision} on {spec.tensor_parallel} x "
                  f"{spec.machine.chip.name}, vLLM, max batch {spec.max_batch}, KV {spec.sizing.kv_tokens:,} tokens); "
                  f"{args.input_len} in / {args.output_len} out; {args.requests_per_stream} requests per stream; "
                  f"cpus: {os.cpu_count()} (client included)")
            print(f"{'streams':>8} {'requests':>9} {'tokens':>9} {'wall s':>7} {'tok/s':>9} {'model tok/s':>12} "
                  f"{'lag p50 ms':>11} {'lag p99 ms':>11} {'lag max ms':>11}")
            rows = [run_one(spec, stack_path, level, args) for level in levels]
            if args.plot:
                plot(rows, args.plot)
                print(f"figure: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
