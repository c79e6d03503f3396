"""The report's figures (matplotlib, PNG). Each function writes one file and returns its path, or
None when the data for that figure is absent (the report then says which run would supply it).

Modelled series are drawn dashed and labelled "(modelled)"; measured ones solid: the two are never
shown as if they were the same kind of number.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.patches import Patch

from .loader import Run
from .recommendations import DECODE_WORKLOADS
from .select import common_top, guide_pairs, sweep

DPI = 110


def _style(source: str) -> dict:
    return {"linestyle": "--" if source == "modelled" else "-", "marker": "o", "markersize": 3}


def _label(stack: str, source: str, extra: str = "") -> str:
    return f"{stack}{extra}" + (" (modelled)" if source == "modelled" else "")


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def latency_throughput(df: pd.DataFrame, out: Path) -> Path | None:
    """TTFT p99 and TPOT p50 against output tokens/s for the decode workloads, one row per model.

    One colour per stack, circles for batch sweeps and squares for rate sweeps (the input-heavy
    workload has its own figure, ``prefill``).
    """
    d = df.dropna(subset=["output_tok_s", "level"])
    d = d.loc[d["workload"].isin(DECODE_WORKLOADS)]
    if d.empty:
        return None
    models = sorted(set(d["model"].dropna()))
    colors = {s: f"C{k % 10}" for k, s in enumerate(sorted(set(d["stack"])))}
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 3.6 * len(models)), squeeze=False)
    for row, model in enumerate(models):
        m = d.loc[d["model"] == model]
        for (source, stack, wl, mode), g in m.groupby(["source", "stack", "workload_label", "mode"]):
            g = g.sort_values("level")
            style = {**_style(source), "color": colors[stack], "marker": "s" if mode == "rate" else "o"}
            lab = _label(stack, source, f" {mode} {wl}")
            axes[row][0].plot(g["output_tok_s"], g["ttft_p99"] * 1e3, label=lab, **style)
            axes[row][1].plot(g["output_tok_s"], g["tpot_p50"] * 1e3, label=lab, **style)
        for ax, what in zip(axes[row], ("TTFT p99 (ms)", "TPOT p50 (ms)"), strict=True):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("output tokens/s")
            ax.set_ylabel(what)
            ax.set_title(f"{model}: {what} vs throughput")
            ax.grid(True, which="both", alpha=0.3)
        axes[row][1].legend(fontsize=7, loc="best")
    return _save(fig, out / "latency_throughput.png")


def per_dollar(df: pd.DataFrame, out: Path) -> Path | None:
    """Output tokens/s per $ at the largest batch each model's stacks share, normalized to the baseline."""
    bars = []
    for (source, model), g in df.groupby(["source", "model"]):
        for w in DECODE_WORKLOADS:
            stacks = sorted(set(g.loc[(g["workload"] == w) & (g["mode"] == "batch"), "stack"]))
            if not stacks:
                continue
            levels = set.intersection(*(set(sweep(g, s, w)["level"]) for s in stacks))
            if not levels:
                continue
            top = max(levels)
            for s in stacks:
                r = sweep(g, s, w)
                r = r.loc[r["level"] == top].iloc[0]
                bars.append((source, model, s, top, r["norm_per_usd"], r["baseline"]))
            break
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(bars)), 4))
    labels = [_label(s, src) + f"\nbatch {lvl:g}" for src, _m, s, lvl, _v, _b in bars]
    values = [v for *_x, v, _b in bars]
    models = sorted({b[1] for b in bars})
    colors = [f"C{models.index(m)}" for _s, m, *_rest in bars]
    hatches = ["//" if src == "modelled" else "" for src, *_ in bars]
    rects = ax.bar(range(len(bars)), values, color=colors, edgecolor="white")
    for rect, h in zip(rects, hatches, strict=True):
        rect.set_hatch(h)
    for i, v in enumerate(values):
        ax.annotate(f"{v:.2f}", (i, v), ha="center", va="bottom", fontsize=8)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(bars)), labels, fontsize=7, rotation=20, ha="right")
    ax.set_ylabel("output tokens/s per $ (baseline = 1)")
    ax.set_title("Output tokens/s per $ (each model's baseline = 1)" + (", hatched: modelled" if any(hatches) else ""),
                 fontsize=10)
    ax.legend(handles=[Patch(facecolor=f"C{i}", label=m) for i, m in enumerate(models)], fontsize=8)
    return _save(fig, out / "per_dollar.png")


def batch_effect(df: pd.DataFrame, out: Path) -> Path | None:
    """The guide's batching figure: throughput and mean latency against static batch size. The latency is
    per output token (NTPOT = e2e ÷ output tokens, TTFT included), as the guide's benchmark tool records it."""
    d = df.loc[(df["mode"] == "batch") & df["workload"].isin(DECODE_WORKLOADS)]
    if d["level"].nunique() < 2:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for (source, stack, wl), g in d.groupby(["source", "stack", "workload_label"]):
        g = g.sort_values("level")
        lab = _label(stack, source, f" {wl}")
        a1.plot(g["level"], g["output_tok_s"], label=lab, **_style(source))
        a2.plot(g["level"], g["ntpot_mean"] * 1e3, label=lab, **_style(source))
    for ax, what in ((a1, "output tokens/s"), (a2, "mean latency per output token, NTPOT (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("static batch size")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    a1.set_title("Throughput vs batch size")
    a2.set_title("Latency vs batch size")
    a2.legend(fontsize=7)
    return _save(fig, out / "batch_effect.png")


def prefill(df: pd.DataFrame, out: Path) -> Path | None:
    """Input-heavy workload: prefill tokens/s and prefill tokens per $ (G2 = 1) for each G2/A3 pair."""
    rows = []
    for p in guide_pairs(df):
        top = common_top(sweep(df, p.a, "input-heavy", source=p.source), sweep(df, p.b, "input-heavy", source=p.source))
        if top is None:
            continue
        a, b = top
        for r, fam in ((a, "G2"), (b, "A3")):
            rows.append((p, fam, r["stack"], r["input_tok_s"], r["input_tok_per_usd"] / a["input_tok_per_usd"],
                         r["level"], r["workload_label"]))
    if not rows:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    labels = [_label(s, p.source) + f"\n{wl}, batch {lvl:g}" for p, _f, s, _t, _u, lvl, wl in rows]
    colors = ["C0" if fam == "G2" else "C1" for _p, fam, *_ in rows]
    a1.bar(range(len(rows)), [r[3] for r in rows], color=colors)
    a2.bar(range(len(rows)), [r[4] for r in rows], color=colors)
    for i, r in enumerate(rows):
        a1.annotate(f"{r[3]:.0f}", (i, r[3]), ha="center", va="bottom", fontsize=8)
        a2.annotate(f"{r[4]:.2f}", (i, r[4]), ha="center", va="bottom", fontsize=8)
    for ax in (a1, a2):
        ax.set_xticks(range(len(rows)), labels, fontsize=7, rotation=20, ha="right")
    a1.set_ylabel("prefill (input) tokens/s")
    a1.set_title("Prefill throughput, input-heavy workload")
    a2.set_ylabel("prefill tokens per $ (G2 = 1)")
    a2.axhline(1.0, color="grey", linewidth=0.8)
    a2.set_title("Prefill throughput per dollar")
    return _save(fig, out / "prefill.png")


def server_timeline(runs: list[Run], df: pd.DataFrame, out: Path) -> Path | None:
    """Server running batch and queue over time during each stack's batch sweep (the decode workload).

    A sweep run as one run per level is drawn end to end, by level, on one time axis.
    """
    picked: list[tuple[str, str, list[Run]]] = []
    for stack in sorted({r.stack for r in runs}):
        ids = set(df.loc[(df["stack"] == stack) & (df["mode"] == "batch")
                         & df["workload"].isin(DECODE_WORKLOADS), "run_id"])
        first_level = df.loc[df["stack"] == stack].groupby("run_id")["level"].min()
        chosen = sorted((r for r in runs if r.stack == stack and r.run_id in ids and not r.server_metrics.empty),
                        key=lambda r: (first_level.get(r.run_id, 0), r.run_id))
        if chosen:
            picked.append((stack, chosen[0].source, chosen))
    if not picked:
        return None
    fig, axes = plt.subplots(len(picked), 1, figsize=(10, 2.4 * len(picked)), squeeze=False)
    for ax, (stack, source, chosen) in zip(axes[:, 0], picked, strict=True):
        offset = 0.0
        for k, run in enumerate(chosen):
            m = run.server_metrics
            last_end = run.requests["end"].max()
            if pd.notna(last_end):  # scrapes after the last request (a slow shutdown) show nothing of the load
                m = m.loc[m["t"] <= last_end + 1.0]
            for role, color in (("running", "C0"), ("waiting", "C3")):
                s = m.loc[m["role"] == role].groupby("t")["value"].sum().sort_index()
                if not s.empty:
                    ax.plot(s.index + offset, s.values, color=color, linewidth=1,
                            label=f"{role} requests" if k == 0 else None)
            offset += float(m["t"].max()) if len(m) else 0.0
            if len(chosen) > 1:
                ax.axvline(offset, color="grey", linewidth=0.5, alpha=0.5)
        ax.set_title(_label(stack, source, ": server running batch and queue during the batch sweep"), fontsize=9)
        ax.set_xlabel("seconds of load" + (" (runs end to end)" if len(chosen) > 1 else ""))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    return _save(fig, out / "server_timeline.png")


def all_plots(runs: list[Run], df: pd.DataFrame, out: Path) -> dict[str, Path | None]:
    """Every figure; keys are the names the report uses."""
    out.mkdir(parents=True, exist_ok=True)
    return {
        "latency_throughput": latency_throughput(df, out), "per_dollar": per_dollar(df, out),
        "batch_effect": batch_effect(df, out), "prefill": prefill(df, out),
        "server_timeline": server_timeline(runs, df, out),
    }
