"""The guide's recommendations and findings on fixture data built to agree, and to disagree, with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.findings import evaluate as findings
from analysis.loader import load_runs
from analysis.report import analyse
from analysis.slo import parse_slo

from .conftest import A3_7B, G2_7B, write_guide_runs
from .resultsgen import write_run

SLO = parse_slo("ttft_p99=2s,tpot_p50=100ms")


def _verdicts(root: Path) -> dict[int, str]:
    a = analyse(load_runs([str(root)]), SLO)
    return {v.number: v.verdict for v in a.recommendations}


def test_guide_shaped_data_supports_recommendations(guide_results: Path) -> None:
    a = analyse(load_runs([str(guide_results)]), SLO)
    by = {v.number: v for v in a.recommendations}
    assert by[1].verdict == "supported" and "llama2-70b-g2-fp8" in by[1].summary
    assert by[3].verdict == "supported"
    assert by[5].verdict == "supported"
    assert all(v.source == "modelled" for v in a.recommendations)
    # recommendation 3's evidence: the per-$ ratio at batch 256, computed from the curves by hand
    tok_g2 = 256 * 64 / G2_7B.e2e(256, 64)
    tok_a3 = 256 * 64 / A3_7B.e2e(256, 64)
    g2_cost = a.stages.loc[a.stages["stack"] == "llama2-7b-g2", "usd_per_hour"].iloc[0]
    a3_cost = a.stages.loc[a.stages["stack"] == "llama2-7b-a3", "usd_per_hour"].iloc[0]
    ev = by[3].evidence.set_index("model")
    assert float(ev.loc["llama-2-7b", "A3 per $ (G2 = 1)"]) == pytest.approx((tok_a3 / a3_cost) / (tok_g2 / g2_cost),
                                                                              abs=0.005)
    assert ev.loc["llama-2-7b", "winner"] == "G2" and ev.loc["llama-2-70b", "winner"] == "A3"


def test_findings_report_the_guide_claims_with_numbers(guide_results: Path) -> None:
    a = analyse(load_runs([str(guide_results)]), SLO)
    f = {(x.key, x.claim.split(":")[0]): x for x in findings(a.stages)}
    keys = {k for k, _ in f}
    assert {"prefill-throughput", "prefill-per-dollar", "batch-gain-A3", "batch-gain-G2", "batch-latency-order",
            "per-dollar-small", "per-dollar-large"} <= keys
    small = next(x for (k, _), x in f.items() if k == "per-dollar-small")
    large = next(x for (k, _), x in f.items() if k == "per-dollar-large")
    assert small.verdict == "reproduced" and large.verdict == "reproduced"
    order = next(x for (k, _), x in f.items() if k == "batch-latency-order")
    assert order.verdict == "reproduced"


def test_cheap_a3_flips_the_gpu_choice_verdict(tmp_path: Path) -> None:
    # Same curves, but A3 priced like G2: A3 wins per $ for 7B too, against the guide.
    write_run(tmp_path, "llama2-7b-g2", curve=G2_7B, usd_per_hour=1.0)
    write_run(tmp_path, "llama2-7b-a3", curve=A3_7B, usd_per_hour=1.0)
    assert _verdicts(tmp_path)[3] == "not supported"
    f = {x.key: x for x in findings(analyse(load_runs([str(tmp_path)]), SLO).stages)}
    assert f["per-dollar-small"].verdict == "not reproduced"


def test_missing_comparisons_are_not_evaluated_and_say_what_to_run(tmp_path: Path) -> None:
    write_run(tmp_path, "llama2-7b-g2", curve=G2_7B, levels=(16,))
    a = analyse(load_runs([str(tmp_path)]), SLO)
    by = {v.number: v for v in a.recommendations}
    for n in (1, 3, 4, 5):
        assert by[n].verdict == "not evaluated", n
    assert "--input-len" in by[4].summary and "--levels" in by[5].summary
    assert all(x.verdict == "not evaluated" for x in a.findings)


def test_modelled_and_measured_get_separate_verdicts(tmp_path: Path) -> None:
    write_guide_runs(tmp_path / "sim", modelled=True)
    write_run(tmp_path / "real", "llama2-7b-g2", curve=G2_7B, modelled=False)
    a = analyse(load_runs([str(tmp_path)]), SLO)
    assert {v.source for v in a.recommendations} == {"modelled", "measured"}
    measured = {v.number: v.verdict for v in a.recommendations if v.source == "measured"}
    assert measured[3] == "not evaluated"  # one measured stack: nothing measured to compare with


def test_memory_fit_matches_the_server_cap_to_the_kv_capacity(tmp_path: Path) -> None:
    # llama2-7b-g2 holds 12,445 KV tokens = 64 sequences of 128 + 64 tokens: at batch 256 the server caps.
    write_run(tmp_path, "llama2-7b-g2", curve=G2_7B, levels=(16, 256), max_running=64)
    write_run(tmp_path, "llama2-7b-a3", curve=A3_7B, levels=(16, 256))
    a = analyse(load_runs([str(tmp_path)]), SLO)
    v = next(x for x in a.recommendations if x.number == 2)
    assert v.verdict == "supported" and "1 stack(s) ran a batch whose KV demand exceeds" in v.summary
    ev = v.evidence.set_index("stack")
    assert ev.loc["llama2-7b-g2", "seqs the KV holds"] == "65" and ev.loc["llama2-7b-g2", "server running max"] == "64"


def test_memory_fit_flags_a_cap_the_rule_did_not_predict(tmp_path: Path) -> None:
    write_run(tmp_path, "llama2-7b-a3", curve=A3_7B, levels=(16, 256), max_running=64)  # KV holds 613 sequences
    v = next(x for x in analyse(load_runs([str(tmp_path)]), SLO).recommendations if x.number == 2)
    assert v.verdict == "partly supported" and "llama2-7b-a3" in v.summary


def test_findings_compare_the_guide_shapes_g2_side_priced_nearest_its_5_5x(tmp_path: Path) -> None:
    # Two 7B G2 stacks: one L4 ($0.85/h, 12.9x cheaper than the H100) and two L4s ($2.00/h, 5.5x): the
    # guide's "A3 costs 5.5x G2 for the compared shapes" picks the two-L4 one as its G2 side.
    for stack, curve in (("llama2-7b-g2", G2_7B), ("llama2-7b-g2x2", G2_7B), ("llama2-7b-a3", A3_7B)):
        write_run(tmp_path, stack, curve=curve)
    a = analyse(load_runs([str(tmp_path)]), SLO)
    f = {x.key: x for x in findings(a.stages)}
    small = f["per-dollar-small"]
    gpu_choice = next(v for v in a.recommendations if v.number == 3).evidence.set_index("model")
    assert gpu_choice.loc["llama-2-7b", "G2 stack"] == "llama2-7b-g2x2"  # the recommendations compare it too
    assert "llama2-7b-g2x2 (g2-standard-24, 2× " in small.claim and "llama2-7b-a3 (a3-highgpu-1g, 1× " in small.claim
    assert "llama2-7b-g2 (" not in small.claim


def test_batch_latency_finding_is_the_per_token_latency_increase(guide_results: Path) -> None:
    # The guide's tool records latency per output token (e2e / output tokens, TTFT included).
    a = analyse(load_runs([str(guide_results)]), SLO)
    f = {x.key: x for x in findings(a.stages)}
    from .conftest import A3_70B, G2_70B
    for fam, curve in (("A3", A3_70B), ("G2", G2_70B)):
        ntpot_up = (curve.e2e(256, 64) - curve.e2e(16, 64)) / 64 * 1e3
        e2e_up = (curve.e2e(256, 64) - curve.e2e(16, 64)) * 1e3
        measured = f[f"batch-latency-{fam}"].measured
        assert measured.startswith(f"+{ntpot_up:,.0f} ms (") and f"mean e2e +{e2e_up:,.0f} ms" in measured, measured
