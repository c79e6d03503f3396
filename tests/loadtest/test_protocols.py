"""End to end through the CLI, per dialect, against the fixture server's documented wire formats."""

from __future__ import annotations

import json

import pytest

from .conftest import endpoint_args, load_run, results_dir_from, run_cli


@pytest.mark.parametrize(("dialect", "api", "model", "source"), [
    ("openai", "completions", "fixture", "usage"),
    ("openai", "chat", "fixture", "usage"),
    ("tgi", "completions", "tgi", "details"),
    ("tgi", "chat", "tgi", "usage"),
    ("triton", "completions", "ensemble", "chunks"),
    ("jetstream", "completions", "jetstream", "chunks"),
])
def test_dialect_end_to_end(capsys, tmp_path, fixture_url, dialect, api, model, source):
    code, out, _ = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/ok/2", dialect, model), "--api", api,
                           "--mode", "batch", "--levels", "3", "--requests-per-level", "6", "--output-len", "12",
                           "--results-dir", str(tmp_path))
    assert code == 0
    run_dir = results_dir_from(out)
    summary, records = load_run(run_dir)
    assert len(records) == 6
    for r in records:
        assert r["error"] is None, r
        assert r["outputTokens"] == 12 == sum(n for _, n in r["chunks"])
        assert r["tokenSource"] == source
        assert 0 < r["first"] - r["sent"] <= r["end"] - r["sent"]
    stage = summary["stages"][0]
    assert stage["completed"] == 6 and stage["outputTokens"] == 72
    # ITL of a 2 ms-per-token stream: the median gap is near 2 ms
    assert 0.0015 < stage["itl"]["p50"] < 0.02
    run = json.loads((run_dir / "run.json").read_text())
    assert run["endpoint"]["dialect"] == dialect and run["target"] == "url"


def test_metrics_scraped_during_load(capsys, tmp_path, fixture_url):
    code, out, _ = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/ok/20"), "--mode", "batch",
                           "--levels", "8", "--requests-per-level", "24", "--output-len", "20",
                           "--scrape-interval", "0.1", "--metrics-url", f"{fixture_url}/metrics",
                           "--results-dir", str(tmp_path))
    assert code == 0
    run_dir = results_dir_from(out)
    summary, _ = load_run(run_dir)
    scrapes = [json.loads(line) for line in (run_dir / "server_metrics.jsonl").read_text().splitlines()]
    assert len(scrapes) >= 5
    key = 'vllm:num_requests_running{engine="0",model_name="fixture"}'
    assert max(s["samples"][key] for s in scrapes) > 0
    assert not any("_bucket" in k for s in scrapes for k in s["samples"])  # buckets are dropped
    server = summary["stages"][0]["serverMetrics"]
    assert server["runningMax"] > 0 and server["scrapes"] >= 3
    assert server["preemptions"] == 0


def test_export_vllm_writes_one_file_per_stage(capsys, tmp_path, fixture_url):
    code, out, _ = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/ok/0"), "--mode", "rate",
                           "--levels", "50,100", "--requests-per-level", "10", "--output-len", "5",
                           "--export", "vllm", "--results-dir", str(tmp_path))
    assert code == 0
    run_dir = results_dir_from(out)
    files = sorted((run_dir / "vllm").glob("*.json"))
    assert [f.name for f in files] == ["0-rate-50.json", "1-rate-100.json"]
    v = json.loads(files[0].read_text())
    assert v["completed"] == 10 and v["total_output_tokens"] == 50 and v["request_rate"] == 50
    _, records = load_run(run_dir)
    first_stage = [r for r in records if r["stage"] == "0-rate-50"]
    assert len(v["ttfts"]) == 10 and [len(x) for x in v["itls"]] == [len(r["chunks"]) - 1 for r in first_stage]
    assert v["median_ttft_ms"] > 0 and "p99_tpot_ms" in v and "mean_e2el_ms" in v


def test_rate_sweep_reports_the_knee_of_a_saturating_server(capsys, tmp_path, fixture_url):
    # cap/2 with 4 tokens x 5 ms: the server completes at most 2 / 0.02 s = 100 requests/s
    code, out, _ = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/cap/2"), "--mode", "sweep",
                           "--levels", "20,40,400", "--requests-per-level", "40", "--output-len", "4",
                           "--results-dir", str(tmp_path))
    assert code == 0
    summary, _ = load_run(results_dir_from(out))
    sweep = summary["sweep"]
    levels = [h["level"] for h in sweep["history"]]
    assert levels[:3] == [20, 40, 400] and len(levels) == 4  # three given levels, then one bisection
    assert sweep["history"][2]["good"] is False and "kept pace" in sweep["history"][2]["why"]
    assert sweep["knee"] in (40, 220)
    assert [s["level"] for s in summary["stages"]] == levels


def test_batch_sweep_stops_when_throughput_stops_growing(capsys, tmp_path, fixture_url):
    # cap/2: at most two requests generate at once, so batch sizes beyond 2 add no throughput. Each
    # request holds its slot for 160 tokens x 5 ms = 0.8 s. At batch 2 the client's turnaround between
    # a completion and its next request leaves the slot idle (a deeper queue hides it); it grows on a
    # busy machine (tens of ms beside two CPU-bound processes), so the slot is long enough to keep it
    # a few per cent, well below the sweep's 10 % growth rule.
    code, out, _ = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/cap/2"), "--mode", "sweep",
                           "--sweep-of", "batch", "--levels", "1,2,4,8", "--requests-per-level", "4",
                           "--output-len", "160", "--results-dir", str(tmp_path))
    assert code == 0
    summary, _ = load_run(results_dir_from(out))
    sweep = summary["sweep"]
    assert sweep["of"] == "batch" and sweep["knee"] == 2
    assert [h["level"] for h in sweep["history"]][:3] == [1, 2, 4] and "grew only" in sweep["stopReason"]


def test_sharegpt_dataset_through_the_cli(capsys, tmp_path, fixture_url):
    data = [{"conversations": [{"from": "human", "value": f"question {k} " + "word " * (20 + k)},
                               {"from": "gpt", "value": "answer " * (40 + 4 * k)}]} for k in range(10)]
    path = tmp_path / "sharegpt.json"
    path.write_text(json.dumps(data))
    code, out, _ = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/ok/0"), "--mode", "batch", "--levels", "2",
                           "--requests-per-level", "10", "--dataset", str(path), "--results-dir", str(tmp_path / "r"))
    assert code == 0
    summary, records = load_run(results_dir_from(out))
    assert summary["workload"]["source"] == "sharegpt(sharegpt.json)"
    # no /tokenize here: reply lengths are estimated at 4 characters per token and requested as such
    wanted = sorted(r["outputTokensRequested"] for r in records)
    assert wanted == sorted(max(1, len("answer " * (40 + 4 * k)) // 4) for k in range(10))
    assert all(r["outputTokens"] == r["outputTokensRequested"] for r in records)


# The keys ``vllm bench serve --save-result`` writes (vllm/benchmarks/serve.py, v0.32.0)
VLLM_RESULT_KEYS = {
    "date", "endpoint_type", "backend", "label", "model_id", "tokenizer_id", "num_prompts", "request_rate",
    "burstiness", "max_concurrency", "duration", "completed", "failed", "total_input_tokens", "total_output_tokens",
    "request_throughput", "request_goodput", "output_throughput", "total_token_throughput", "input_lens",
    "output_lens", "ttfts", "itls", "latencies", "start_times", "queue_times", "generated_texts", "errors",
    "max_output_tokens_per_s", "max_concurrent_requests",
    *(f"{s}_{m}_ms" for s in ("mean", "median", "std", "p99") for m in ("ttft", "tpot", "itl", "e2el")),
}


def test_export_vllm_has_every_key_and_lists_aligned_with_failures(capsys, tmp_path, fixture_url):
    code, out, err = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/error/2"), "--mode", "rate",
                             "--levels", "50", "--requests-per-level", "6", "--output-len", "5", "--arrival", "gamma",
                             "--burstiness", "0.5", "--max-concurrency", "3", "--export", "vllm",
                             "--results-dir", str(tmp_path))
    assert code == 0, err
    v = json.loads((results_dir_from(out) / "vllm" / "0-rate-50.json").read_text())
    assert set(v) >= VLLM_RESULT_KEYS
    assert (v["backend"], v["burstiness"], v["max_concurrency"]) == ("openai", 0.5, 3)
    assert v["completed"] == 0 and v["failed"] == 6 and v["request_goodput"] is None
    per_request = ("input_lens", "output_lens", "ttfts", "itls", "latencies", "start_times", "errors")
    assert all(len(v[k]) == 6 for k in per_request)
    assert v["output_lens"] == [0] * 6 and all(e.startswith("server_error") for e in v["errors"])
