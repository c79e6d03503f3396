"""How fast can the load generator itself go? The highest open-loop rate it sustains against a server
that cannot be the bottleneck, and its CPU cost per 1000 requests.

Harness: Debian's nginx (``apt-get install nginx-light``) answering every request with a canned
OpenAI stream (64 one-token chunks, a usage chunk, ``[DONE]``) via ``return 200``; if nginx is not
installed, an equivalent zero-latency aiohttp server in its own process (said in the output).
Each rate runs ``python -m loadtest run --mode rate`` for ``--duration`` seconds (128 in / 64 out).
A rate is *sustained* when achieved >= 98 % of requested, no request failed, and TTFT p99 <= 5 ms.
Optionally runs other load generators on the same harness and rule: ``--compare-vllm`` runs
``vllm bench serve`` from .venv-vllm; ``--compare-inference-perf`` runs kubernetes-sigs/inference-perf
0.7.0 with 2 worker processes (installed on first use into .venv-inference-perf, see
inference_perf_compare.py).

    .venv/bin/python benchmarks/generator_capacity.py [--duration 15] [--rates 200,400,800,...]
        [--compare-vllm] [--compare-inference-perf]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import inference_perf_compare  # noqa: E402
from loadtest import local_vllm  # noqa: E402
from loadtest.targets import free_port, stop_process  # noqa: E402


def canned_stream(tokens: int = 64) -> str:
    """A minimal, valid OpenAI completions stream (nginx's ``return`` text must stay under 4 KB)."""
    chunks = ['data: {"choices":[{"text":" t"}]}\n\n'] * (tokens - 1)
    chunks.append('data: {"choices":[{"text":" t","finish_reason":"length"}]}\n\n')
    usage = {"prompt_tokens": 128, "completion_tokens": tokens, "total_tokens": 128 + tokens}
    chunks.append("data: " + json.dumps({"choices": [], "usage": usage}, separators=(",", ":")) + "\n\n")
    chunks.append("data: [DONE]\n\n")
    return "".join(chunks)


def start_nginx(port: int, body: str) -> tuple[subprocess.Popen, str]:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        raise FileNotFoundError("nginx")
    root = Path(tempfile.mkdtemp(prefix="lt-nginx-"))
    root.chmod(0o755)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"):
        (root / sub).mkdir()
        (root / sub).chmod(0o777)
    conf = root / "nginx.conf"
    escaped = body.replace("\\", "\\\\").replace('"', '\\"')
    conf.write_text(f"""
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/logs/error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {root}/body; proxy_temp_path {root}/proxy; fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;
    client_body_buffer_size 64k;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type text/event-stream;
            return 200 "{escaped}";
        }}
    }}
}}
""")
    proc = subprocess.Popen([nginx, "-p", str(root), "-c", str(conf), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return proc, f"nginx {subprocess.run([nginx, '-v'], capture_output=True, text=True).stderr.strip()}"


PY_SERVER = """
import sys
from aiohttp import web
body = open(sys.argv[2], "rb").read()
async def any_(request):
    await request.read()
    return web.Response(body=body, content_type="text/event-stream")
app = web.Application()
app.router.add_route("*", "/{tail:.*}", any_)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def start_python_server(port: int, body: str) -> tuple[subprocess.Popen, str]:
    root = Path(tempfile.mkdtemp(prefix="lt-zero-"))
    (root / "body").write_text(body)
    proc = subprocess.Popen([sys.executable, "-c", PY_SERVER, str(port), str(root / "body")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, "aiohttp zero-latency server (nginx not installed)"


def start_harness() -> tuple[subprocess.Popen, str, str]:
    """nginx with the canned stream on a free port (the aiohttp server when nginx is missing):
    the process, what it is, its URL."""
    port = free_port()
    body = canned_stream()
    try:
        proc, harness = start_nginx(port, body)
    except FileNotFoundError:
        proc, harness = start_python_server(port, body)
    return proc, harness, f"http://127.0.0.1:{port}"


def wait_up(url: str, proc: subprocess.Popen) -> None:
    for _ in range(100):
        if proc.poll() is not None:
            raise RuntimeError(f"harness server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=0.5, trust_env=False)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("harness server did not start")


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_ours(url: str, rate: float, duration: float, client: str, results: Path, workers: int = 1) -> dict:
    cmd = [sys.executable, "-m", "loadtest", "run", "--stack", "bench", "--endpoint", url, "--dialect", "openai",
           "--model", "m", "--mode", "rate", "--levels", f"{rate:g}", "--duration", f"{duration:g}",
           "--input-len", "128", "--output-len", "64", "--no-progress", "--no-metrics", "--http-client", client,
           "--workers", str(workers), "--results-dir", str(results)]
    cpu0 = child_cpu()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=duration * 4 + 120, check=False)
    cpu = child_cpu() - cpu0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    run_dir = Path(proc.stdout.strip().splitlines()[-1].removeprefix("results: "))
    stage = json.loads((run_dir / "summary.json").read_text())["stages"][0]
    # CPU while the stage ran (the tool's own figure, per worker process, so x workers); the
    # process total (`cpu`, with start-up and prompt generation) is printed alongside
    client = stage["client"]
    stage_cpu = client["cpuPercent"] / 100 * client.get("workers", 1) * (stage["duration_s"] or 0)
    return {"requested": rate, "achieved": stage["achievedRate"] or 0.0, "requests": stage["requests"],
            "errors": sum(stage["errors"].values()), "ttft_p99_ms": 1000 * stage["ttft"]["p99"],
            "dispatch_p99_ms": 1000 * stage["dispatchDelay"]["p99"],
            "cpu_s_per_1000": 1000 * stage_cpu / max(stage["requests"], 1),
            "total_cpu_s_per_1000": 1000 * cpu / max(stage["requests"], 1), "bottleneck": stage["clientBottleneck"]}


def run_vllm_bench(url: str, rate: float, duration: float, results: Path) -> dict | None:
    if not local_vllm.installed():
        return None
    n = int(rate * duration)
    out = results / f"vllm-{rate:g}.json"
    cmd, env = local_vllm.vllm_bench_command([
        "--backend", "openai", "--base-url", url, "--endpoint", "/v1/completions", "--model", "m", "--tokenizer",
        str(local_vllm.MODEL), "--dataset-name", "random", "--random-input-len", "128", "--random-output-len", "64",
        "--num-prompts", str(n), "--request-rate", f"{rate:g}", "--ignore-eos", "--save-result", "--result-dir",
        str(results), "--result-filename", out.name, "--disable-tqdm"])
    cpu0 = child_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration * 4 + 180, env=env, check=False)
    cpu = child_cpu() - cpu0
    if proc.returncode != 0 or not out.exists():
        print(f"  vllm bench serve failed: {proc.stderr[-600:]}", file=sys.stderr)
        return None
    r = json.loads(out.read_text())
    achieved = r["completed"] / r["duration"] if r.get("duration") else 0.0
    return {"requested": rate, "achieved": achieved, "requests": n, "errors": n - r["completed"],
            "ttft_p99_ms": r["p99_ttft_ms"], "dispatch_p99_ms": float("nan"), "cpu_s_per_1000": float("nan"),
            "total_cpu_s_per_1000": 1000 * cpu / n, "bottleneck": None}


def inference_perf_tool(url: str, duration: float, results: Path):
    """The per-rate runner for inference-perf, or None (with the reason printed) when it cannot be set up."""
    try:
        cli = inference_perf_compare.ensure_installed()
        tokenizer = inference_perf_compare.ensure_tokenizer()
    except (inference_perf_compare.Unavailable, subprocess.CalledProcessError) as exc:
        print(f"inference-perf skipped: {exc}", file=sys.stderr)
        return None

    def run(rate: float) -> dict | None:
        cpu0 = child_cpu()
        try:
            row = inference_perf_compare.run_stage(cli, tokenizer, url, rate, duration, results, workers=2)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"  inference-perf failed: {exc}", file=sys.stderr)
            return None
        cpu = child_cpu() - cpu0
        return {**row, "cpu_s_per_1000": float("nan"), "total_cpu_s_per_1000": 1000 * cpu / max(row["requests"], 1),
                "bottleneck": None}
    return run


def sustained(row: dict) -> bool:
    return row["achieved"] >= 0.98 * row["requested"] and row["errors"] == 0 and row["ttft_p99_ms"] <= 5.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--rates", default="200,400,800,1200,1600,2000,2400")
    ap.add_argument("--clients", default="aiohttp,httpx")
    ap.add_argument("--workers", default="1,2", help="worker-process counts to measure (aiohttp client)")
    ap.add_argument("--compare-vllm", action="store_true", help="also run vllm bench serve from .venv-vllm")
    ap.add_argument("--compare-inference-perf", action="store_true",
                    help="also run inference-perf 0.7.0 (2 worker processes) from .venv-inference-perf, "
                         "installing it there with python3.12 on first use")
    a = ap.parse_args()
    rates = [float(x) for x in a.rates.split(",")]
    proc, harness, url = start_harness()
    results = Path(tempfile.mkdtemp(prefix="lt-capacity-"))
    try:
        wait_up(url + "/health", proc)
        print(f"harness: {harness} on {url}; {a.duration:g} s per rate; 128 in / 64 out; {os.cpu_count()} CPUs")
        tools = [(f"loadtest ({c}, 1 process)", lambda r, c=c: run_ours(url, r, a.duration, c, results))
                 for c in a.clients.split(",")]
        tools += [(f"loadtest (aiohttp, {w} worker processes)",
                   lambda r, w=w: run_ours(url, r, a.duration, "aiohttp", results, w))
                  for w in map(int, a.workers.split(",")) if w > 1]
        if a.compare_vllm:
            tools.append(("vllm bench serve", lambda r: run_vllm_bench(url, r, a.duration, results)))
        if a.compare_inference_perf:
            run_ip = inference_perf_tool(url, a.duration, results)
            if run_ip is not None:
                tools.append((f"inference-perf {inference_perf_compare.VERSION} (2 worker processes)", run_ip))
            else:
                print("\ninference-perf: not available (reason above)")
        for name, fn in tools:
            print(f"\n{name}")
            print(f"{'requested':>10} {'achieved':>9} {'errors':>6} {'TTFT p99 ms':>11} {'dispatch p99 ms':>15} "
                  f"{'CPU s/1000 (stage)':>18} {'(process)':>9}  sustained")
            best = None
            for rate in rates:
                row = fn(rate)
                if row is None:
                    print("  (not available)")
                    break
                ok = sustained(row)
                print(f"{row['requested']:>10.0f} {row['achieved']:>9.1f} {row['errors']:>6} "
                      f"{row['ttft_p99_ms']:>11.2f} {row['dispatch_p99_ms']:>15.2f} {row['cpu_s_per_1000']:>18.3f} "
                      f"{row['total_cpu_s_per_1000']:>9.3f}  {'yes' if ok else 'no'}")
                if ok:
                    best = row
                elif row["achieved"] < 0.9 * row["requested"] or row["ttft_p99_ms"] > 1000:
                    break  # far past its limit: higher rates only take longer to fail
            if best:
                print(f"=> {name}: highest sustained rate {best['requested']:.0f} req/s "
                      f"(CPU {best['cpu_s_per_1000']:.3f} s per 1000 requests while sending)")
            else:
                print(f"=> {name}: no rate sustained")
    finally:
        stop_process(proc)
        shutil.rmtree(results, ignore_errors=True)


if __name__ == "__main__":
    main()
