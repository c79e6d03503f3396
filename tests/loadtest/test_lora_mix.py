"""``--lora-mix``: traffic split across a stack's LoRA adapters, recorded per request and reported per adapter."""

from __future__ import annotations

import collections

import pytest

from analysis.adapters import adapter_table
from analysis.loader import load_run as load_analysis_run
from loadtest.errors import BadInput
from loadtest.lora_mix import assign, parse_lora_mix
from loadtest.protocols import Prompt
from loadtest.workloads import Workload

from .conftest import endpoint_args, load_run, results_dir_from, run_cli


def test_the_mix_is_parsed_and_checked():
    assert parse_lora_mix("sql=0.5, chat=0.3 ,base=0.2") == {"sql": 0.5, "chat": 0.3, "base": 0.2}
    assert parse_lora_mix(None) == {}
    for bad, why in (("sql", "NAME=WEIGHT"), ("sql=0.5,sql=0.5", "twice"), ("sql=0,base=1", "above 0"),
                     ("sql=0.5,base=0.4", "add up to 0.9")):
        with pytest.raises(BadInput, match=why):
            parse_lora_mix(bad)


def test_adapters_are_drawn_by_weight_and_seed():
    def drawn(seed: int) -> list[str | None]:
        w = Workload([Prompt(f"p{i}", 4, 4) for i in range(2000)], True, "test")
        assign(w, {"sql": 0.7, "base": 0.3}, seed)
        return [p.adapter for p in w.prompts]

    first = drawn(1)
    assert first == drawn(1) and first != drawn(2)
    assert collections.Counter(first)["sql"] / 2000 == pytest.approx(0.7, abs=0.04)
    assert set(first) == {"sql", None}  # base: the request asks the base model


def test_a_mixed_run_against_the_simulated_server_is_reported_per_adapter(capsys, tmp_path):
    code, out, err = run_cli(capsys, "run", "--stack", "llama2-7b-lora-g2", "--target", "sim", "--mode", "batch",
                             "--levels", "4", "--requests-per-level", "24", "--output-len", "4", "--input-len", "32",
                             "--lora-mix", "sql=0.5,base=0.5", "--results-dir", str(tmp_path), "--no-progress")
    assert code == 0, err
    run_dir = results_dir_from(out)
    summary, records = load_run(run_dir)
    assert all(r["error"] is None for r in records)
    counts = collections.Counter(r["adapter"] for r in records)
    assert set(counts) == {"sql", None} and sum(counts.values()) == 24
    assert summary["config"]["loraMix"] == {"sql": 0.5, "base": 0.5}
    table = adapter_table([load_analysis_run(run_dir)])
    assert set(table["adapter"]) == {"sql", "base"}
    assert table["requests"].sum() == 24 and table["share"].sum() == pytest.approx(1.0)
    assert (table["completed"] == table["requests"]).all() and (table["ttft_p50"] > 0).all()


def test_an_adapter_the_server_does_not_serve_is_refused_with_the_ones_it_does(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--stack", "llama2-7b-lora-g2", "--target", "sim", "--mode", "batch",
                           "--levels", "1", "--requests-per-level", "1", "--lora-mix", "sqll=0.5,base=0.5",
                           "--results-dir", str(tmp_path), "--no-progress")
    assert code == 2
    assert "no adapter sqll" in err and "its adapters: sql" in err and "Traceback" not in err


def test_a_protocol_without_per_request_adapters_is_refused(capsys, tmp_path, fixture_url):
    code, _, err = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/ok/1", dialect="triton"), "--mode", "batch",
                           "--levels", "1", "--requests-per-level", "1", "--lora-mix", "sql=1",
                           "--results-dir", str(tmp_path))
    assert code == 2 and "--lora-mix" in err and "vLLM or TGI" in err


def _tgi_lora_stack(tmp_path):
    """A TGI stack serving one Hub adapter under its repo id, as a stack file the simulator can serve."""
    import yaml

    from tests.stack_configs import BASE, merge

    doc = merge(BASE, {"gke-llm-bench:server": {"kind": "tgi", "lora": {"adapters": [
        {"name": "yard1/llama-2-7b-sql-lora-test", "source": "yard1/llama-2-7b-sql-lora-test"}]}}})
    path = tmp_path / "Pulumi.tgi-lora.yaml"
    path.write_text(yaml.safe_dump({"config": doc}))
    return str(path)


def test_tgi_is_asked_for_its_adapter_by_id(capsys, tmp_path):
    stack = _tgi_lora_stack(tmp_path)
    code, out, err = run_cli(capsys, "run", "--stack", stack, "--target", "sim", "--mode", "batch", "--levels", "2",
                             "--requests-per-level", "12", "--output-len", "4", "--input-len", "32", "--lora-mix",
                             "yard1/llama-2-7b-sql-lora-test=0.5,base=0.5", "--results-dir", str(tmp_path / "r"),
                             "--no-progress")
    assert code == 0, err
    _, records = load_run(results_dir_from(out))
    assert all(r["error"] is None for r in records) and len(records) == 12
    assert {r["adapter"] for r in records} == {"yard1/llama-2-7b-sql-lora-test", None}


def test_tgi_adapters_are_checked_against_the_stack_as_tgi_would_not_refuse_one(capsys, tmp_path):
    stack = _tgi_lora_stack(tmp_path)
    code, _, err = run_cli(capsys, "run", "--stack", stack, "--target", "sim", "--mode", "batch", "--levels", "1",
                           "--requests-per-level", "1", "--lora-mix", "sql=1", "--results-dir", str(tmp_path / "r"),
                           "--no-progress")
    assert code == 2 and "serves no adapter sql" in err and "base model" in err


def test_worker_processes_keep_each_requests_adapter(capsys, tmp_path):
    code, out, err = run_cli(capsys, "run", "--stack", "llama2-7b-lora-g2", "--target", "sim", "--mode", "rate",
                             "--levels", "8", "--requests-per-level", "16", "--output-len", "4", "--input-len", "32",
                             "--lora-mix", "sql=0.5,base=0.5", "--workers", "2", "--results-dir", str(tmp_path),
                             "--no-progress")
    assert code == 0, err
    _, records = load_run(results_dir_from(out))
    assert {r["adapter"] for r in records} == {"sql", None} and len(records) == 16
