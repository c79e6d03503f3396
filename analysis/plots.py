"""The report's figures (matplotlib, PNG). Each function writes one file and returns its path, or
None when the data for that figure is absent (the report then says which run would supply it).

Modelled series are drawn dashed with hollow markers (bars hatched) and labelled "(modelled)"; measured
ones solid: the two are never shown as if they were the same kind of number. A stack has one colour in
every figure (``stack_colors``), legends sit outside the axes, and every axis names its unit.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

from .answer import Answer
from .loader import Run
from .recommendations import DECODE_WORKLOADS
from .select import common_top, guide_pairs, sweep
from .slo import Slo, format_seconds

DPI = 110
MODELLED_HATCH = "//"


def stack_colors(stacks: list[str] | set[str]) -> dict[str, str]:
    """One colour per stack, the same in every figure of a report (tab20 beyond ten stacks)."""
    names = sorted(set(stacks))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {st: matplotlib.colors.to_hex(cmap(k % cmap.N)) for k, st in enumerate(names)}


def _style(source: str, color: str | None = None, marker: str = "o") -> dict:
    """Dashed with hollow markers for modelled series, solid and filled for measured ones."""
    modelled = source == "modelled"
    style = {"linestyle": "--" if modelled else "-", "marker": marker, "markersize": 4,
             "markerfacecolor": "none" if modelled else color}
    if color is not None:
        style["color"] = color
    return style


def _label(stack: str, source: str, extra: str = "") -> str:
    return f"{stack}{extra}" + (" (modelled)" if source == "modelled" else "")


def _levels_axis(ax, levels) -> None:
    """A log2 axis of load levels labelled as the levels themselves (16, 32 …), not 2⁴, 2⁵ …."""
    ticks = sorted({float(v) for v in levels if pd.notna(v) and v > 0})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])  # fixed ticks at the levels, labelled as numbers
    ax.xaxis.set_minor_locator(NullLocator())


def _plain_log(ax, which: str = "both") -> None:
    """Log axes labelled 0.2, 0.5, 1, 2 … rather than 2×10⁻¹: the reader reads values, not exponents."""
    fmt = FuncFormatter(lambda v, _pos: f"{v:g}")
    for axis in ([ax.xaxis, ax.yaxis] if which == "both" else [ax.xaxis if which == "x" else ax.yaxis]):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(fmt)
        axis.set_minor_formatter(NullFormatter())


def _legend_outside(ax, fig=None, **kw) -> None:
    """The legend right of the axes, where it covers no data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, **kw)


def _modelled_note(fig, modelled: bool) -> None:
    if modelled:
        fig.text(0.01, 0.005, "dashed lines, hollow markers, hatched bars: modelled (simulated endpoint)",
                 fontsize=7, color="dimgray", ha="left", va="bottom")


def _save(fig, path: Path) -> Path:
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def latency_throughput(df: pd.DataFrame, out: Path, colors: dict[str, str]) -> Path | None:
    """TTFT p99 and TPOT p50 against output tokens/s for the decode workloads, one row per model.

    Circles for batch sweeps and squares for rate sweeps (the input-heavy workload has its own figure,
    ``prefill``).
    """
    d = df.dropna(subset=["output_tok_s", "level"])
    d = d.loc[d["workload"].isin(DECODE_WORKLOADS)]
    if d.empty:
        return None
    models = sorted(set(d["model"].dropna()))
    fig, axes = plt.subplots(len(models), 2, figsize=(12, 3.6 * len(models)), squeeze=False)
    for row, model in enumerate(models):
        m = d.loc[d["model"] == model]
        for (source, stack, wl, mode), g in m.groupby(["source", "stack", "workload_label", "mode"]):
            g = g.sort_values("level")
            style = _style(source, colors[stack], "s" if mode == "rate" else "o")
            lab = _label(stack, source, f" {mode} {wl}")
            axes[row][0].plot(g["output_tok_s"], g["ttft_p99"] * 1e3, label=lab, **style)
            axes[row][1].plot(g["output_tok_s"], g["tpot_p50"] * 1e3, label=lab, **style)
        for ax, what in zip(axes[row], ("TTFT p99 (ms)", "TPOT p50 (ms)"), strict=True):
            ax.set_xscale("log")
            ax.set_yscale("log")
            _plain_log(ax)
            ax.set_xlabel("output tokens/s")
            ax.set_ylabel(what)
            ax.set_title(f"{model}: {what} vs throughput", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
        _legend_outside(axes[row][1])
    _modelled_note(fig, "modelled" in set(d["source"]))
    return _save(fig, out / "latency_throughput.png")


def _pareto(points: pd.DataFrame) -> pd.DataFrame:
    """The points no other beats on both latency (x) and price (y): lower is better on each."""
    front, best = [], float("inf")
    for _, p in points.sort_values(["x", "y"]).iterrows():
        if p["y"] < best:
            front.append(p)
            best = p["y"]
    return pd.DataFrame(front)


def cost_latency(df: pd.DataFrame, out: Path, slo: Slo, colors: dict[str, str]) -> Path | None:
    """$ per million tokens against each latency term of the SLO, per model and workload: the question itself.

    One line per stack and mode through its load levels (level annotated), the SLO limit as a vertical
    line, the Pareto front (cheapest for its latency) as a thick grey band. Only the stages that decide
    verdicts are drawn (a simulated stage's model replay; never a host-bound measurement).
    """
    terms = [t for t in slo.terms if t.metric != "error_rate" and t.key in df]
    d = df.loc[df["decides"] & df["level"].notna() & df["usd_per_m_tokens"].notna()]
    if not terms or d.empty:
        return None
    groups = list(d.groupby(["source", "model", "workload_label"], sort=True))
    fig, axes = plt.subplots(len(groups), len(terms), figsize=(6.2 * len(terms) + 2.2, 3.8 * len(groups)),
                             squeeze=False)
    for row, ((source, model, label), g) in enumerate(groups):
        basis = g["cost_basis"].iloc[0]
        for col, term in enumerate(terms):
            ax = axes[row][col]
            pts = g.assign(x=g[term.key], y=g["usd_per_m_tokens"]).dropna(subset=["x", "y"])
            for (stack, mode), s in pts.groupby(["stack", "mode"], sort=True):
                s = s.sort_values("level")
                ax.plot(s["x"], s["y"], label=_label(str(stack), str(source), f" {mode}"),
                        **_style(str(source), colors[str(stack)], "s" if mode == "rate" else "o"))
                for _, p in s.iterrows():
                    ax.annotate(f"{p['level']:g}", (p["x"], p["y"]), fontsize=6, xytext=(3, 3),
                                textcoords="offset points", color=colors[str(stack)])
            front = _pareto(pts[["x", "y"]])
            if not front.empty:
                ax.plot(front["x"], front["y"], color="grey", linewidth=6, alpha=0.25, zorder=0, solid_capstyle="round",
                        label="Pareto front")
            ax.axvline(term.limit, color="red", linestyle=":", linewidth=1.2, label="SLO limit")
            ax.annotate(f"SLO {format_seconds(term.limit)}", (term.limit, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(3, -10), textcoords="offset points", fontsize=7, color="red")
            ax.set_xscale("log")
            ax.set_yscale("log")
            _plain_log(ax)
            ax.set_xlabel(f"{term.metric.upper()} {term.stat} (s)")
            ax.set_ylabel(f"$ per million {basis} tokens")
            ax.set_title(f"{model}, {label} tokens: cost vs {term.metric.upper()} {term.stat}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
        _legend_outside(axes[row][-1])
    _modelled_note(fig, "modelled" in set(d["source"]))
    return _save(fig, out / "cost_latency.png")


def per_dollar(answers: list[Answer], out: Path, slo: Slo, colors: dict[str, str]) -> Path | None:
    """Tokens per dollar at each stack's best load under the SLO (``answer.py``), one panel per model and
    decode workload (each with its own scale). Stacks that meet the SLO at no tested level get an empty
    slot saying so; a "≥" level is a lower bound.
    """
    shown = [a for a in answers if a.workload in DECODE_WORKLOADS and (a.ranked or a.never)]
    if not shown:
        return None
    widths = [len(a.ranked) + len(a.never) for a in shown]
    fig, axes = plt.subplots(1, len(shown), figsize=(max(7.0, 1.3 * sum(widths) + 1.5), 4.4), squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    for ax, a in zip(axes[0], shown, strict=True):
        hatch = MODELLED_HATCH if a.source == "modelled" else ""
        names = [p.stack for p in a.ranked] + sorted(a.never)
        for i, p in enumerate(a.ranked):
            value = 1.0 / p.usd_per_m
            ax.bar(i, value, color=colors[p.stack], edgecolor="white", hatch=hatch)
            ax.annotate(f"{value:.2f}\n{p.load}", (i, value), ha="center", va="bottom", fontsize=7)
        for i in range(len(a.ranked), len(names)):
            ax.annotate("fails the SLO\nat every level", (i, 0), ha="center", va="bottom", fontsize=7,
                        color="firebrick")
        ax.set_xticks(range(len(names)), names, fontsize=7, rotation=25, ha="right")
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.margins(y=0.25)
        ax.set_ylabel(f"million {a.cost_basis} tokens per $")
        ax.set_title(f"{a.model}, {a.workload_label} tokens" + (" (modelled)" if a.source == "modelled" else ""),
                     fontsize=9)
    fig.suptitle(f"Tokens per $ at each stack's best load meeting the SLO ({slo})", fontsize=10)
    _modelled_note(fig, any(a.source == "modelled" for a in shown))
    return _save(fig, out / "per_dollar.png")


def batch_effect(df: pd.DataFrame, out: Path, colors: dict[str, str]) -> Path | None:
    """The guide's batching figure: throughput and mean latency against static batch size. The latency is
    per output token (NTPOT = e2e ÷ output tokens, TTFT included), as the guide's benchmark tool records it."""
    d = df.loc[(df["mode"] == "batch") & df["workload"].isin(DECODE_WORKLOADS)]
    if d["level"].nunique() < 2:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.2))
    for (source, stack, wl), g in d.groupby(["source", "stack", "workload_label"]):
        g = g.sort_values("level")
        lab = _label(stack, source, f" {wl}")
        a1.plot(g["level"], g["output_tok_s"], label=lab, **_style(source, colors[stack]))
        a2.plot(g["level"], g["ntpot_mean"] * 1e3, label=lab, **_style(source, colors[stack]))
    for ax, what in ((a1, "output tokens/s"), (a2, "mean latency per output token, NTPOT (ms)")):
        ax.set_yscale("log")
        _plain_log(ax, "y")
        _levels_axis(ax, d["level"])
        ax.set_xlabel("static batch size (concurrent requests)")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    a1.set_title("Throughput vs batch size", fontsize=10)
    a2.set_title("Latency vs batch size", fontsize=10)
    _legend_outside(a2)
    _modelled_note(fig, "modelled" in set(d["source"]))
    return _save(fig, out / "batch_effect.png")


def prefill(df: pd.DataFrame, out: Path, colors: dict[str, str]) -> Path | None:
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
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.4))
    labels = [_label(s, p.source) + f"\n{wl}, batch {lvl:g}" for p, _f, s, _t, _u, lvl, wl in rows]
    hatch = [MODELLED_HATCH if p.source == "modelled" else "" for p, *_ in rows]
    for i, r in enumerate(rows):
        a1.bar(i, r[3], color=colors[r[2]], edgecolor="white", hatch=hatch[i])
        a2.bar(i, r[4], color=colors[r[2]], edgecolor="white", hatch=hatch[i])
        a1.annotate(f"{r[3]:.0f}", (i, r[3]), ha="center", va="bottom", fontsize=8)
        a2.annotate(f"{r[4]:.2f}", (i, r[4]), ha="center", va="bottom", fontsize=8)
    for ax in (a1, a2):
        ax.set_xticks(range(len(rows)), labels, fontsize=7, rotation=20, ha="right")
        ax.margins(y=0.15)
    a1.set_ylabel("prefill (input) tokens/s")
    a1.set_title("Prefill throughput, input-heavy workload", fontsize=10)
    a2.set_ylabel("prefill tokens per $ (G2 = 1)")
    a2.axhline(1.0, color="grey", linewidth=0.8)
    a2.set_title("Prefill throughput per dollar", fontsize=10)
    _modelled_note(fig, any(hatch))
    return _save(fig, out / "prefill.png")


def server_timeline(runs: list[Run], df: pd.DataFrame, out: Path) -> Path | None:
    """Server running batch, queue and KV-cache usage over time during each stack's batch sweep.

    A sweep run as one run per level is drawn end to end, by level, on one time axis, each segment
    labelled with its batch size.
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
    fig, axes = plt.subplots(len(picked), 1, figsize=(11, 2.6 * len(picked)), squeeze=False)
    for ax, (stack, source, chosen) in zip(axes[:, 0], picked, strict=True):
        kv_ax = ax.twinx()
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
            kv = m.loc[m["role"] == "kv_usage"].groupby("t")["value"].mean().sort_index()
            if not kv.empty:
                kv_ax.plot(kv.index + offset, kv.values * 100, color="C2", linewidth=0.8, linestyle=":",
                           label="KV-cache usage" if k == 0 else None)
            span = float(m["t"].max()) if len(m) else 0.0
            levels = df.loc[(df["stack"] == stack) & (df["run_id"] == run.run_id) & (df["mode"] == "batch"), "level"]
            if len(levels):
                ax.annotate(f"batch {levels.iloc[0]:g}", (offset + span / 2, 1.0), xycoords=("data", "axes fraction"),
                            ha="center", va="bottom", fontsize=6, color="dimgray")
            offset += span
            if len(chosen) > 1:
                ax.axvline(offset, color="grey", linewidth=0.5, alpha=0.5)
        ax.set_title(_label(stack, source, ": the server's running batch, queue and KV-cache usage during the batch "
                                           "sweep"), fontsize=9, pad=12)
        ax.set_xlabel("seconds of load" + (" (runs end to end)" if len(chosen) > 1 else ""))
        ax.set_ylabel("requests")
        kv_ax.set_ylabel("KV cache used (%)")
        kv_ax.set_ylim(0, 105)
        ax.grid(True, alpha=0.3)
        handles = ax.get_legend_handles_labels()[0] + kv_ax.get_legend_handles_labels()[0]
        names = ax.get_legend_handles_labels()[1] + kv_ax.get_legend_handles_labels()[1]
        ax.legend(handles, names, fontsize=7, loc="upper left", bbox_to_anchor=(1.07, 1.0), borderaxespad=0)
    _modelled_note(fig, any(src == "modelled" for _s, src, _c in picked))
    return _save(fig, out / "server_timeline.png")


def all_plots(runs: list[Run], df: pd.DataFrame, out: Path, slo: Slo, answers: list[Answer]) -> dict[str, Path | None]:
    """Every figure; keys are the names the report uses."""
    out.mkdir(parents=True, exist_ok=True)
    colors = stack_colors(set(df["stack"]))
    return {
        "cost_latency": cost_latency(df, out, slo, colors), "per_dollar": per_dollar(answers, out, slo, colors),
        "latency_throughput": latency_throughput(df, out, colors), "batch_effect": batch_effect(df, out, colors),
        "prefill": prefill(df, out, colors), "server_timeline": server_timeline(runs, df, out),
    }
