"""The command-line contract: bad input exits 2 naming the flag, outputs files, in-cluster hints, secrets."""

from __future__ import annotations

import json

import pytest

from loadtest.targets import free_port

from .conftest import endpoint_args, load_run, results_dir_from, run_cli, written_files


@pytest.mark.parametrize(("args", "needle"), [
    (["--mode", "batch"], "--levels"),
    (["--mode", "batch", "--levels", "4,x"], "--levels"),
    (["--mode", "batch", "--levels", "2.5"], "whole numbers"),
    (["--mode", "rate", "--levels", "1", "--slo", "ttft=2s"], "--slo"),
    (["--mode", "rate", "--levels", "1", "--slo", "ttft_p99=fast"], "--slo"),
    (["--mode", "rate", "--levels", "1", "--input-len", "0"], "--input-len"),
    (["--mode", "rate", "--levels", "1", "--output-len", "9:3"], "--output-len"),
    (["--mode", "rate", "--levels", "1", "--duration", "5", "--requests-per-level", "3"], "--duration"),
    (["--mode", "rate", "--levels", "1", "--dataset", "/nonexistent.json"], "--dataset"),
])
def test_bad_input_exits_2_naming_the_flag(capsys, tmp_path, fixture_url, args, needle):
    code, _, err = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/ok/0"), *args,
                           "--results-dir", str(tmp_path / "r"))
    assert code == 2
    assert needle in err
    assert not (tmp_path / "r").exists()


def test_endpoint_needs_dialect_and_model(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--stack", "x", "--endpoint", "http://127.0.0.1:9", "--mode", "batch",
                           "--levels", "1", "--results-dir", str(tmp_path))
    assert code == 2 and "--dialect" in err


def _outputs(tmp_path, **over):
    outputs = {"stack": "llama2-7b-g2", "endpoint": "http://vllm-llama-2-7b.default.svc.cluster.local:8000",
               "externalEndpoint": None, "exposure": "cluster",
               "portForward": "kubectl port-forward -n default svc/vllm-llama-2-7b 8000:8000",
               "localUrl": "http://127.0.0.1:8000", "dialect": "openai", "servedModel": "fixture",
               "metricsUrl": "http://vllm-llama-2-7b.default.svc.cluster.local:8000/metrics",
               "metricsPortForward": None, "healthPath": "/health", "costPerHour": 0.85,
               "spec": {"cost": {"usdPerHour": 0.85, "usdPerReplicaHour": 0.85}, "model": {"alias": "llama-2-7b"}}}
    outputs.update(over)
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    return path


def test_without_pulumi_the_error_says_how_to_pass_outputs(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no pulumi CLI on it
    code, _, err = run_cli(capsys, "run", "--stack", "llama2-7b-g2", "--mode", "batch", "--levels", "1",
                           "--results-dir", str(tmp_path / "r"), "--no-progress")
    assert code == 2
    assert "pulumi CLI is not installed" in err and "--outputs" in err and "--target sim" in err
    assert not (tmp_path / "r").exists()


def test_in_cluster_endpoint_gives_the_port_forward_command(capsys, tmp_path):
    port = free_port()
    path = _outputs(tmp_path, localUrl=f"http://127.0.0.1:{port}",
                    portForward=f"kubectl port-forward -n default svc/vllm-llama-2-7b {port}:8000")
    code, _, err = run_cli(capsys, "run", "--stack", "llama2-7b-g2", "--outputs", str(path), "--mode", "batch",
                           "--levels", "1", "--results-dir", str(tmp_path / "r"), "--no-progress")
    assert code == 3
    assert f"kubectl port-forward -n default svc/vllm-llama-2-7b {port}:8000" in err
    assert "in-cluster only" in err
    assert not (tmp_path / "r").exists()


def test_outputs_file_run_carries_outputs_and_never_the_api_key(capsys, tmp_path, fixture_url):
    secret = "sk-do-not-write-me-4242"
    path = _outputs(tmp_path, externalEndpoint=f"{fixture_url}/ok/0", apiKey=secret,
                    kubeconfig="apiVersion: v1 secret-kubeconfig")
    code, out, _ = run_cli(capsys, "run", "--stack", "llama2-7b-g2", "--outputs", str(path), "--mode", "batch",
                           "--levels", "2", "--requests-per-level", "4", "--output-len", "3",
                           "--results-dir", str(tmp_path / "r"), "--no-progress")
    assert code == 0
    run_dir = results_dir_from(out)
    assert run_dir == tmp_path / "r" / "llama2-7b-g2" / run_dir.name
    summary, records = load_run(run_dir)
    assert summary["target"] == "gke" and summary["modelled"] is False
    assert summary["spec"]["cost"]["usdPerHour"] == 0.85
    assert summary["outputs"]["servedModel"] == "fixture" and "apiKey" not in summary["outputs"]
    assert len(records) == 4 and all(r["error"] is None for r in records)
    for f, text in written_files(run_dir).items():
        assert secret not in text and "secret-kubeconfig" not in text, f


def test_summary_is_consistent_with_requests_and_config(capsys, tmp_path, fixture_url):
    code, out, _ = run_cli(capsys, "run", *endpoint_args(f"{fixture_url}/ok/1"), "--mode", "rate",
                           "--levels", "40", "--arrival", "poisson", "--requests-per-level", "30",
                           "--warmup", "0.2", "--slo", "ttft_p99=2s,tpot_p50=100ms", "--seed", "7",
                           "--output-len", "8", "--results-dir", str(tmp_path), "--run-id", "fixed")
    assert code == 0
    run_dir = results_dir_from(out)
    summary, records = load_run(run_dir)
    assert run_dir.name == "fixed" and summary["runId"] == "fixed" and summary["formatVersion"] >= 1
    stage = summary["stages"][0]
    measured = [r for r in records if not r["warmup"]]
    assert stage["requests"] == len(measured) == 30
    assert stage["warmupRequests"] == len(records) - 30 > 0  # 40 req/s for 0.2 s of warmup
    assert stage["outputTokens"] == sum(r["outputTokens"] for r in measured if r["error"] is None)
    assert summary["config"]["slo"] == {"ttft_p99": 2.0, "tpot_p50": 0.1}
    assert summary["config"]["arrival"] == "poisson" and summary["config"]["seed"] == 7
    assert stage["sloMet"] == {"ttft_p99": True, "tpot_p50": True}
    assert stage["goodput"] == pytest.approx(stage["requestThroughput"])
    assert summary["complete"] is True and summary["partial"] is False
    for key in ("ttft", "tpot", "ntpot", "itl", "itlPerToken", "e2e", "e2eFromScheduled", "dispatchDelay"):
        assert set(stage[key]) == {"mean", "p50", "p90", "p95", "p99", "max"}


def test_simulate_hands_arguments_to_the_simulator(monkeypatch):
    import sys
    import types

    seen = {}
    fake = types.ModuleType("loadtest.simulator.cli")
    fake.main = lambda argv, serve_prog=None: seen.update(argv=argv, prog=serve_prog) or 0
    monkeypatch.setitem(sys.modules, "loadtest.simulator.cli", fake)
    from loadtest.cli import main

    assert main(["simulate", "--stack", "llama2-7b-g2", "--port", "9"]) == 0
    assert seen == {"argv": ["serve", "--stack", "llama2-7b-g2", "--port", "9"], "prog": "python -m loadtest simulate"}


def test_simulate_help_is_its_own_usage(capsys, monkeypatch):
    from loadtest.cli import main

    monkeypatch.setenv("COLUMNS", "200")  # one line per flag
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m loadtest simulate") and "(default: 127.0.0.1)" in out


def test_run_help_shows_defaults_and_examples(capsys, monkeypatch):
    from loadtest.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "(default: aiohttp)" in out and "(default: None)" not in out
    assert "python -m loadtest run --stack llama2-7b-g2 --target sim --mode batch --levels 16,32,64" in out


def test_outputs_of_another_stack_are_refused_naming_both(capsys, tmp_path):
    path = _outputs(tmp_path, stack="llama2-70b-a3")
    code, _, err = run_cli(capsys, "run", "--stack", "llama2-7b-g2", "--outputs", str(path), "--mode", "batch",
                           "--levels", "1", "--results-dir", str(tmp_path / "r"))
    assert code == 2 and "llama2-70b-a3" in err and "llama2-7b-g2" in err
    assert not (tmp_path / "r").exists()


def test_final_table_is_never_cut_in_a_pipe(capsys, tmp_path, fixture_url):
    args = [a for a in endpoint_args(f"{fixture_url}/ok/1") if a != "--no-progress"]
    code, _, err = run_cli(capsys, "run", *args, "--mode", "batch", "--levels", "2,4", "--requests-per-level", "4",
                           "--output-len", "4", "--results-dir", str(tmp_path))
    assert code == 0
    table = err[err.index("load test summary"):]
    assert "…" not in table and "0-batch-2" in table and "ok/sent" in table and "errors" in table
