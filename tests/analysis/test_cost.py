"""Cost columns: $ per million output tokens, tokens per $, normalization to a baseline stack."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.cost import add_cost
from analysis.errors import AnalysisError
from analysis.frame import stage_frame
from analysis.loader import load_runs

from .resultsgen import Curve, spec_summary, write_run

G2, A3 = Curve(0.1, 0.0, 0.05, 0.0), Curve(0.01, 0.0, 0.005, 0.0)  # flat curves: tok/s = N·64/e2e


def _frame(root: Path, baseline: str | None = None) -> pd.DataFrame:
    df, _ = stage_frame(load_runs([str(root)]))
    return add_cost(df, baseline)


def test_cost_per_million_tokens_and_per_dollar(tmp_path: Path) -> None:
    write_run(tmp_path, "llama2-7b-g2", curve=G2, levels=(16,), usd_per_hour=1.0)
    write_run(tmp_path, "llama2-7b-a3", curve=A3, levels=(16,), usd_per_hour=20.0)
    df = _frame(tmp_path).set_index("stack")
    tok_g2 = 16 * 64 / G2.e2e(16, 64)
    tok_a3 = 16 * 64 / A3.e2e(16, 64)
    assert df.loc["llama2-7b-g2", "usd_per_m_output"] == pytest.approx(1.0 / (tok_g2 * 3600) * 1e6)
    assert df.loc["llama2-7b-a3", "output_tok_per_usd"] == pytest.approx(tok_a3 * 3600 / 20.0)
    # default baseline: the model's first G2 stack
    assert set(df["baseline"]) == {"llama2-7b-g2"}
    assert df.loc["llama2-7b-g2", "norm_per_usd"] == pytest.approx(1.0)
    assert df.loc["llama2-7b-a3", "norm_per_usd"] == pytest.approx((tok_a3 / 20.0) / (tok_g2 / 1.0))


def test_explicit_baseline_and_unknown_baseline(tmp_path: Path) -> None:
    write_run(tmp_path, "llama2-7b-g2", curve=G2, levels=(16,), usd_per_hour=1.0)
    write_run(tmp_path, "llama2-7b-a3", curve=A3, levels=(16,), usd_per_hour=20.0)
    df = _frame(tmp_path, "llama2-7b-a3").set_index("stack")
    assert df.loc["llama2-7b-a3", "norm_per_usd"] == pytest.approx(1.0)
    with pytest.raises(AnalysisError, match='"nope" is not among the results'):
        _frame(tmp_path, "nope")


def test_each_model_gets_its_own_g2_baseline(tmp_path: Path) -> None:
    for stack in ("llama2-7b-g2", "llama2-7b-a3", "llama2-70b-a3", "llama2-70b-g2", "llama2-70b-g2-fp8"):
        write_run(tmp_path, stack, curve=G2, levels=(16,))
    df = _frame(tmp_path).set_index("stack")
    assert df.loc["llama2-70b-a3", "baseline"] == "llama2-70b-g2"  # first G2 stack by name, not fp8
    assert df.loc["llama2-7b-a3", "baseline"] == "llama2-7b-g2"


def test_modelled_and_measured_are_never_normalized_against_each_other(tmp_path: Path) -> None:
    write_run(tmp_path / "sim", "llama2-7b-g2", curve=G2, levels=(16,), usd_per_hour=1.0, modelled=True)
    write_run(tmp_path / "real", "llama2-7b-a3", curve=A3, levels=(16,), usd_per_hour=20.0, modelled=False)
    df = _frame(tmp_path).set_index("stack")
    assert df.loc["llama2-7b-a3", "source"] == "measured"
    # the measured A3 run has no measured G2 to compare with: it is its own baseline
    assert df.loc["llama2-7b-a3", "baseline"] == "llama2-7b-a3"
    assert df.loc["llama2-7b-a3", "norm_per_usd"] == pytest.approx(1.0)


def test_replica_price_charges_only_the_chips_in_use(tmp_path: Path) -> None:
    spec = spec_summary("llama2-7b-g2")
    spec["cost"].update({"usdPerHour": 8.0, "usdPerReplicaHour": 1.0})  # 1 of 8 GPUs of a node
    spec["server"]["replicas"] = 2
    write_run(tmp_path, "llama2-7b-g2", curve=G2, levels=(16,), spec=spec)
    df, _ = stage_frame(load_runs([str(tmp_path)]))
    pool, replicas = add_cost(df, price="pool").iloc[0], add_cost(df, price="replicas").iloc[0]
    assert pool["usd_per_hour"] == 8.0 and replicas["usd_per_hour"] == 2.0 and replicas["usd_per_hour_pool"] == 8.0
    assert replicas["usd_per_m_output"] == pytest.approx(pool["usd_per_m_output"] / 4)
    with pytest.raises(AnalysisError, match="unknown price basis"):
        add_cost(df, price="spot")


def test_all_in_price_adds_a_whole_cluster_and_is_the_default(tmp_path: Path) -> None:
    spec = spec_summary("llama2-7b-g2")  # the committed stack's own prices: an L4 node and a cluster
    write_run(tmp_path, "llama2-7b-g2", curve=G2, levels=(16,), spec=spec)
    df, _ = stage_frame(load_runs([str(tmp_path)]))
    all_in, pool = add_cost(df).iloc[0], add_cost(df, price="pool").iloc[0]
    cluster = spec["cost"]["clusterUsdPerHour"]
    assert cluster == pytest.approx(0.10 + 0.134012, abs=1e-4)  # GKE's fee + one e2-standard-4 system node
    assert all_in["usd_per_hour"] == pytest.approx(spec["cost"]["usdPerHour"] + cluster, abs=1e-4)
    assert all_in["usd_per_hour_pool"] == pool["usd_per_hour"] == spec["cost"]["usdPerHour"]
    assert all_in["usd_per_m_output"] > pool["usd_per_m_output"]



def test_an_autoscaled_stage_is_priced_by_the_replicas_that_served_it() -> None:
    rows = pd.DataFrame({
        "stack": ["fleet", "fleet", "fixed"], "source": "measured", "model": "m", "workload_label": "128→64",
        "workload": "balanced", "mode": "rate", "level": [4.0, 8.0, 4.0], "output_tok_s": 1000.0,
        "input_tok_s": 2000.0, "usd_per_hour": [4.0, 4.0, 1.0], "usd_per_hour_all_in": [4.5, 4.5, 1.5],
        "usd_per_replica_hour": [1.0, 1.0, 1.0], "replicas": [1, 1, 1],
        "server_replicas_mean": [1.5, 3.0, float("nan")], "machine_family": "g2"})
    df = add_cost(rows).set_index("level", append=True)
    # the pool part follows the mean ready replicas; the cluster's own 0.5 $/h stays
    assert list(df["usd_per_hour"]) == pytest.approx([2.0, 3.5, 1.5])
    assert list(df["usd_per_hour_pool"]) == pytest.approx([1.5, 3.0, 1.0])
    assert df["usd_per_m_output"].iloc[0] == pytest.approx(2.0 / (1000 * 3600) * 1e6)
