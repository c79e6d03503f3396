"""The model against published measurements: the documented error bounds hold."""

from __future__ import annotations

import statistics

from loadtest.simulator.calibration import compare_all, guide_findings, load_calibration


def test_calibration_error_within_targets():
    comps = compare_all()
    errs = [abs(c.error) for c in comps]
    assert len(comps) == len(load_calibration()[0])
    assert statistics.median(errs) <= 0.15
    assert max(errs) <= 0.35, [(c.point.id, round(c.error, 3)) for c in comps]


def test_every_point_has_a_source():
    points, guide = load_calibration()
    assert all(p.source for p in points)
    assert guide["prefill_ratio_a3_vs_g2"] == 13.8


def test_guide_findings_are_computed_not_copied(stacks):
    findings = {f.key: f for f in guide_findings(stacks)}
    assert set(findings) >= {"prefill_ratio", "prefill_per_dollar", "batch_gain_70b_a3", "batch_gain_70b_g2",
                             "latency_increase_70b_a3", "latency_increase_70b_g2", "per_dollar_7b", "per_dollar_70b"}
    # A3's latency grows less than G2's over the batch range: the guide's direction
    assert findings["latency_increase_70b_a3"].model < findings["latency_increase_70b_g2"].model
    # batching 16 -> 256 raises throughput on both
    assert findings["batch_gain_70b_a3"].model > 1 and findings["batch_gain_70b_g2"].model > 1
    # per-$ verdicts follow the model's own ratio (which way it falls is the model's finding, not the guide's)
    for key in ("per_dollar_7b", "per_dollar_70b"):
        f = findings[key]
        a, b = _per_usd(f.detail)
        assert abs(f.model - a / b) < 1e-3 * f.model and f.holds == (f.model > 1)


def _per_usd(detail: str) -> tuple[float, float]:
    """The two output-tokens-per-$ figures a per-$ finding prints: "A (m) 123 vs B (m) 456 output tokens per $"."""
    head = detail.split(" output tokens per $")[0]
    left, right = head.split(" vs ")
    return float(left.rsplit(" ", 1)[1].replace(",", "")), float(right.rsplit(" ", 1)[1].replace(",", ""))


def test_guide_findings_use_the_guide_shapes_and_its_per_token_latency(stacks):
    findings = {f.key: f for f in guide_findings(stacks, (32, 128))}
    # the guide's 7B G2 side: two L4s (g2-standard-24), the shape priced 5.5x below one H100
    assert "llama2-7b-g2x2 (g2-standard-24)" in findings["per_dollar_7b"].detail
    assert abs(findings["prefill_per_dollar"].model * 5.51 - findings["prefill_ratio"].model) < 0.1
    # the guide's latency is per output token: the increase is the whole-request one / 128 output tokens
    for tag in ("a3", "g2"):
        f = findings[f"latency_increase_70b_{tag}"]
        e2e_up = float(f.detail.rsplit("(+", 1)[1].split(" ms")[0].replace(",", ""))
        assert abs(f.model - e2e_up / 128) < 0.05, f.detail
