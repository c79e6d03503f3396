"""`python -m stacks recommend`: hand-checked picks, the pruning bound, stack files it writes, bad input.

The searches are restricted to vLLM (the server with a measured error band) to keep the suite
fast; the full catalog's timing is ``benchmarks/recommend_speed.py``'s job.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from loadtest.simulator.error_bands import ERRORS_FILE, error_band
from recommend.cli import main
from recommend.evaluate import StagePredictor, optimistic_capacity
from recommend.query import Query, QueryError, model_section, parse_slo, workload_shapes
from recommend.search import search
from recommend.space import enumerate_candidates
from recommend.write import stack_name, write_stack_files
from stacks.catalog import load_catalog
from stacks.loader import load_stack_file
from stacks.sizing import WEIGHT_SHARE_LIMIT

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "tests" / "models"


def query(model: str, shapes: tuple[tuple[int, int], ...], slo: str, **kw) -> Query:
    kw.setdefault("servers", ("vllm",))
    kw.setdefault("top", 3)
    return Query(model={"name": model}, model_label=model, shapes=shapes, workload_label="test", slo=parse_slo(slo),
                 **kw)


@pytest.fixture(scope="module")
def loose_7b():
    """The guide's 7B at the demo's shape and a loose SLO, ranked by $ per million output tokens."""
    return search(query("llama-2-7b", ((128, 64),), "ttft_p99=2s,tpot_p50=100ms"))


@pytest.fixture(scope="module")
def tight_long_8b():
    """Long prompts and a tight TTFT at a given rate: the guide's input-heavy case."""
    return search(query("llama-3.1-8b", ((4096, 128),), "ttft_p99=300ms,tpot_p50=100ms", rate=2.0))


def test_a_7b_model_at_a_loose_slo_picks_an_l4(loose_7b):
    top = loose_7b.picks[0]
    assert top.candidate.spec.accelerator == "nvidia-l4"
    # by hand: one L4 holds 6.7 GB of fp8 weights (28 % of 24 GB); the knee is where TTFT p99 hits 2 s
    assert top.candidate.spec.precision.name == "fp8"
    assert top.candidate.spec.sizing.weight_share == pytest.approx(6.74e9 / 24e9, rel=0.01)
    assert top.stage.values["ttft_p99"] <= 2.0 and top.stage.values["tpot_p50"] <= 0.1
    # $ per million output tokens is the node's all-in price over the tokens it produces
    tok_h = top.stage.output_tok_s * top.candidate.replicas_per_node * 3600
    assert top.usd_per_m_output == pytest.approx(top.usd_per_hour / tok_h * 1e6)


def test_a_tight_ttft_with_long_inputs_picks_a_compute_rich_gpu(tight_long_8b):
    """The guide's rule for input-heavy work (A3 over G2) is about FLOPS: the pick has several times
    an L4's, whichever GPU of the catalog it is."""
    top = tight_long_8b.picks[0]
    l4 = load_catalog().chips["nvidia-l4"]
    assert top.candidate.spec.machine.chip.peak_tflops("bf16") >= 4 * l4.peak_tflops("bf16")
    assert top.stage.values["ttft_p99"] <= 0.3
    # the L4 cannot prefill 4096 tokens in 300 ms even alone: it is refused at no load
    l4 = [r for r in tight_long_8b.rejections if "L4" in r.label and r.kind == "slo"]
    assert l4 and all("ttft_p99" in r.reason for r in l4)


def test_picks_are_ranked_and_meet_the_slo(loose_7b, tight_long_8b):
    for result in (loose_7b, tight_long_8b):
        values = [result.value(p) for p in result.picks]
        assert values == sorted(values)
        for p in result.picks:
            assert p.stage.meets(result.query.slo)


def test_rate_mode_sizes_nodes_for_the_traffic(tight_long_8b):
    q = tight_long_8b.query
    for p in tight_long_8b.picks:
        # the replicas share the rate evenly, and each replica's share meets the SLO
        assert p.stage.level == pytest.approx(q.rate / p.replicas)
        if p.nodes > 1:  # one node fewer would not do: check it
            fewer = (p.nodes - 1) * p.candidate.replicas_per_node
            smaller = StagePredictor(q.shapes, q.slo).stage(p.candidate.replica_key, p.candidate.spec, "rate",
                                                            q.rate / fewer)
            assert isinstance(smaller, str) or not smaller.meets(q.slo)


def test_the_same_query_gives_the_same_ranking(loose_7b):
    again = search(loose_7b.query)
    assert [(p.candidate.label, p.nodes, p.stage.level, p.usd_per_m_output) for p in again.picks] == \
        [(p.candidate.label, p.nodes, p.stage.level, p.usd_per_m_output) for p in loose_7b.picks]


def test_a_70b_model_never_exceeds_80_percent_unless_allowed():
    q = query("llama-2-70b", ((128, 64),), "ttft_p99=2s", servers=())
    strict, _ = enumerate_candidates(q)
    assert strict and all(c.spec.sizing.weight_share <= WEIGHT_SHARE_LIMIT for c in strict)
    allowed, _ = enumerate_candidates(query("llama-2-70b", ((128, 64),), "ttft_p99=2s", servers=(),
                                            weights_share_max=0.9))
    over = [c for c in allowed if c.spec.sizing.weight_share > WEIGHT_SHARE_LIMIT]
    # 138 GB of bf16 weights on 2 x H100 (160 GB) is 86 %: refused by the guide's rule, allowed at 0.9
    assert any(c.spec.accelerator == "nvidia-h100-80gb" and c.spec.tensor_parallel == 2 for c in over)


def test_the_pruning_bound_is_never_beaten_by_the_simulation():
    """The search skips candidates whose optimistic capacity cannot rank: it must be optimistic."""
    q = query("llama-3.1-8b", ((1024, 128),), "ttft_p99=60s", servers=())
    candidates, _ = enumerate_candidates(q)
    predictor = StagePredictor(q.shapes, q.slo)
    for c in random.Random(0).sample(candidates, 8):
        saturated = predictor.stage(c.replica_key, c.spec, "batch", c.spec.max_batch, requests=2 * c.spec.max_batch)
        assert not isinstance(saturated, str)
        assert saturated.requests_per_s <= optimistic_capacity(c.spec, q.mean_input, q.mean_output), c.label


def test_shapes_sold_only_as_flex_start_are_explained_when_left_out():
    q = query("llama-2-7b", ((128, 64),), "ttft_p99=2s", flex_start=False)
    candidates, rejections = enumerate_candidates(q)
    assert not any(c.spec.machine.name == "a3-highgpu-1g" for c in candidates)
    assert any("a3-highgpu-1g" in r.label and r.kind == "provisioning" for r in rejections)
    with_flex, _ = enumerate_candidates(query("llama-2-7b", ((128, 64),), "ttft_p99=2s"))
    a3 = [c for c in with_flex if c.spec.machine.name == "a3-highgpu-1g"]
    assert a3 and all(c.provisioning == "flex-start" and c.spec.queued_provisioning for c in a3)


def test_written_stack_files_pass_the_stack_rules(loose_7b, tight_long_8b, tmp_path):
    for result in (loose_7b, tight_long_8b):
        paths = write_stack_files(result, tmp_path)
        assert len(paths) == len(result.picks)
        for pick, path in zip(result.picks, paths, strict=True):
            spec = load_stack_file(path)
            assert spec.name == stack_name(pick)
            assert spec.node_count == pick.nodes and spec.replicas == pick.replicas
            assert spec.machine.name == pick.candidate.spec.machine.name
            text = path.read_text()
            assert "Prediction to confirm" in text and "python -m loadtest run --stack " + spec.name in text
            if pick.stage.mode == "batch":  # rule 5: the server's batch capped at the knee
                assert spec.max_batch == int(pick.stage.level)


def test_a_model_from_its_config_file(tmp_path, capsys):
    out = tmp_path / "stacks"
    code = main(["--model", "meta-llama/Llama-2-7b-hf", "--config-file", str(MODELS / "llama-2-7b.config.json"),
                 "--workload", "128:64", "--server", "vllm", "--precision", "bf16", "--top", "1", "--write", str(out)])
    assert code == 0, capsys.readouterr().out
    (path,) = out.glob("Pulumi.*.yaml")
    assert "configFile: ../../" in path.read_text() or "configFile: ../" in path.read_text()
    spec = load_stack_file(path)
    assert spec.model.params == pytest.approx(6.74e9, rel=0.01)


def test_the_cli_prints_picks_reasons_and_the_confirming_commands(capsys):
    code = main(["--model", "llama-2-7b", "--workload", "128:64", "--server", "vllm", "--top", "2", "--explain"])
    out = capsys.readouterr().out
    assert code == 0
    for text in ("cheapest setups meeting the SLO", "quantize (rule 1)", "memory (rule 2)", "batch (rule 5)",
                 "pulumi up -s llama-2-7b-", "python -m loadtest run --stack", "Not chosen", "simulations"):
        assert text in out, text


@pytest.mark.parametrize("argv, flag, fix", [
    (["--model", "llama-2-7", "--workload", "128:64"], "--model", "did you mean"),
    (["--model", "llama-2-7b", "--workload", "128"], "--workload", "1024:128"),
    (["--model", "llama-2-7b", "--workload", "4096:64"], "--workload", "shorten"),
    (["--model", "llama-2-7b", "--rate", "0"], "--rate", "--rate 20"),
    (["--model", "llama-2-7b", "--slo", "ttft_p99=2"], "--slo", "2s"),
    (["--model", "llama-2-7b", "--slo", "error_rate=1%"], "--slo", "latency"),
    (["--model", "llama-2-7b", "--server", "vlm"], "--server", "vllm"),
    (["--model", "org/x", "--config-file", "/nonexistent/config.json"], "--config-file", "config.json"),
])
def test_bad_input_names_the_flag_and_the_fix(argv, flag, fix, capsys):
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert flag in out and fix in out and "Traceback" not in out


def test_an_impossible_slo_names_the_closest_setup_and_its_cost(capsys):
    code = main(["--model", "llama-2-70b", "--workload", "2048:64", "--slo", "ttft_p99=50ms", "--server", "vllm"])
    out = capsys.readouterr().out
    assert code == 2
    assert "no setup in the catalog meets" in out and "closest:" in out and "/h all-in" in out


def test_query_parsing():
    assert workload_shapes("1024:128", None, None, None) == (((1024, 128),), "1024 in / 128 out tokens")
    shapes, label = workload_shapes(None, "64:256", "32", None)
    assert len(shapes) == 256 and all(64 <= i <= 256 and o == 32 for i, o in shapes) and "uniform" in label
    with pytest.raises(QueryError, match="--dataset"):
        workload_shapes("1:1", None, None, "x.json")


def test_a_sharegpt_dataset_gives_the_load_testers_estimated_lengths(tmp_path):
    data = [{"conversations": [{"from": "human", "value": "word " * n}, {"from": "gpt", "value": "reply " * n}]}
            for n in (40, 80, 120)]
    path = tmp_path / "sharegpt.json"
    path.write_text(json.dumps(data))
    shapes, label = workload_shapes(None, None, None, str(path))
    # four characters per token, as the load tester estimates without a tokenizer ("word " is 5)
    assert sorted(shapes) == [(50, 60), (100, 120), (150, 180)] and "estimated" in label
    shapes, _ = workload_shapes(None, None, "32", str(path))
    assert {o for _, o in shapes} == {32}
    with pytest.raises(QueryError, match="--output-len"):
        workload_shapes(None, None, "many", str(path))
    choice = model_section("llama2-7b-g2", None)
    assert choice.section == {"name": "llama-2-7b"} and choice.starting_stack == "llama2-7b-g2"
    assert choice.gcp["region"] == "us-central1" and choice.max_context == 4096


def test_a_stack_as_the_starting_point_is_sized_beside_the_picks(capsys):
    """--model <stack>: its model, project and region, and the stack itself sized for the same traffic."""
    choice = model_section("llama2-7b-g2", None)
    assert choice.config is not None
    q = query("llama-2-7b", ((128, 64),), "ttft_p99=2s,tpot_p50=100ms", rate=10.0,
              baseline=("llama2-7b-g2", choice.config))
    result = search(q)
    base = result.baseline
    assert not isinstance(base, str) and base is not None
    assert base.candidate.spec.machine.name == "g2-standard-8" and base.candidate.spec.precision.name == "bf16"
    assert base.stage.meets(q.slo)
    # the search covers the same GPU on the cheapest host, so #1 can only be as cheap or cheaper
    assert result.value(result.picks[0]) <= result.value(base)
    assert main(["--model", "llama2-7b-g2", "--workload", "128:64", "--rate", "10", "--server", "vllm",
                 "--top", "1"]) == 0
    assert "your stack llama2-7b-g2 (g2-standard-8" in capsys.readouterr().out


def test_stacks_cli_offers_recommend(capsys):
    from stacks.cli import main as stacks_main

    with pytest.raises(SystemExit) as exit_info:
        stacks_main(["recommend", "--help"])
    assert exit_info.value.code == 0
    assert "--slo" in capsys.readouterr().out


def test_error_bands_file_is_current():
    """serving-errors.json is benchmarks/fidelity.py --points' output: recompute the held-out errors."""
    from loadtest.simulator.serving_points import load_points, predict_points

    recorded = {r["id"]: r for r in json.loads(ERRORS_FILE.read_text())["points"]}
    done, _ = predict_points(load_points())
    assert {c.point.id for c, _ in done} == set(recorded)
    for case, predicted in done:
        assert recorded[case.point.id]["error"] == pytest.approx((predicted - case.point.value) / case.point.value,
                                                                 rel=1e-6, abs=1e-9), case.point.id
        assert recorded[case.point.id]["chip"] == case.spec.accelerator
    band = error_band("vllm", "nvidia-l4")
    assert band.validated and band.n >= 2 and 0 < band.median <= band.worst
    assert not error_band("no-such-profile", "nvidia-l4").validated


def test_a_chip_nobody_has_measured_gets_no_band_and_validated_only_leaves_it_out():
    band = error_band("vllm", "nvidia-b200")
    assert not band.validated and band.basis == "no published serving measurement on nvidia-b200"
    assert error_band("vllm", "nvidia-h100-80gb").validated  # measured: its band stands
    result = search(query("llama-2-70b", ((128, 64),), "ttft_p99=2s,tpot_p50=100ms", validated_only=True, top=2))
    assert result.picks and all(p.band.validated for p in result.picks)
    left_out = [r for r in result.rejections if r.kind == "unvalidated"]
    assert any("a4-highgpu-8g" in r.label and "nvidia-b200" in r.reason for r in left_out)
    assert all("--validated-only" in r.reason for r in left_out)


def test_formats_the_model_has_no_checkpoint_in_are_not_searched():
    candidates, _ = enumerate_candidates(query("gpt-oss-20b", ((128, 64),), "ttft_p99=2s"))
    assert candidates and {c.spec.precision.name for c in candidates} == {"mxfp4"}  # published in MXFP4 only
    candidates, _ = enumerate_candidates(query("llama-2-7b", ((128, 64),), "ttft_p99=2s"))
    assert not {"mxfp4", "nvfp4"} & {c.spec.precision.name for c in candidates}


def test_spot_leaves_out_shapes_without_a_spot_price_and_says_why():
    candidates, rejected = enumerate_candidates(query("llama-2-7b", ((128, 64),), "ttft_p99=2s", spot=True))
    assert candidates and all(c.provisioning == "spot" for c in candidates)
    assert not any(c.spec.machine.name.startswith(("a4-", "g4-")) for c in candidates)
    why = {r.label.split(" ")[0]: r.reason for r in rejected if r.kind == "provisioning"}
    assert "no sourced spot price for a4-highgpu-8g" in why["a4-highgpu-8g"] and "drop --spot" in why["a4-highgpu-8g"]
