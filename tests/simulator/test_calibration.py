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
    assert findings["per_dollar_70b"].holds
