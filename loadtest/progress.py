"""Live progress per stage (rich) and the final table; plain lines with ``--no-progress``.

The display reads counters the scheduler updates; it never touches the records' timing path
(it refreshes on its own timer, four times a second).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import deque
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.measure import Measurement
from rich.table import Table

from .records import RequestRecord


class StageCounters:
    def __init__(self, stage_id: str, label: str):
        self.stage_id = stage_id
        self.label = label
        self.sent = 0
        self.done = 0
        self.errors = 0
        self.out_tokens = 0
        self.started = time.perf_counter()
        self.ttfts: deque[float] = deque(maxlen=512)

    def on_sent(self, rec: RequestRecord) -> None:
        self.sent += 1

    def on_done(self, rec: RequestRecord) -> None:
        self.done += 1
        if rec.error:
            self.errors += 1
        else:
            self.out_tokens += rec.outputTokens or 0
            if rec.first is not None and rec.sent is not None:
                self.ttfts.append(rec.first - rec.sent)

    def row(self) -> list[str]:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        ttft = f"{1000 * statistics.median(self.ttfts):.1f}" if self.ttfts else "-"
        return [self.label, str(self.sent), str(self.done), str(self.errors), str(self.sent - self.done), ttft,
                f"{self.out_tokens / elapsed:,.0f}"]


def stage_line(summary: dict[str, Any]) -> str:
    """A finished stage in one line, from its entry in summary.json (the run log and the demo print it)."""
    ttft = summary.get("ttft") or {}
    return (f"{summary['mode']} {summary['level']:g}: {summary['completed']}/{summary['requests']} ok, "
            f"{summary['requestThroughput']:.2f} req/s, {summary['outputTokensPerS']:.0f} out tok/s, TTFT p50 "
            f"{1000 * ttft['p50'] if ttft else float('nan'):.1f} ms")


HEADERS = ["stage", "sent", "done", "errors", "in flight", "TTFT p50 ms", "out tok/s"]


class Progress:
    """Rich live display when ``enabled`` and stderr is a terminal; otherwise one line per stage."""

    def __init__(self, enabled: bool = True):
        self.console = Console(stderr=True)
        self.live_enabled = enabled and self.console.is_terminal
        self.enabled = enabled
        self.current: StageCounters | None = None
        self._live: Live | None = None

    def _table(self) -> Table:
        t = Table(*HEADERS)
        if self.current:
            t.add_row(*self.current.row())
        return t

    def stage_started(self, stage_id: str, label: str) -> StageCounters:
        self.current = StageCounters(stage_id, label)
        if self.live_enabled:
            self._live = Live(get_renderable=self._table, console=self.console, refresh_per_second=4, transient=True)
            self._live.start()
        return self.current

    def stage_finished(self, summary: dict[str, Any]) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        # one line per stage even without the live display: it is the run's log
        print(f"stage {summary['id']}: {stage_line(summary)}", file=sys.stderr)
        for reason in summary.get("clientBottleneckReasons") or ():
            self.console.print(f"[bold red]WARNING: the load generator is the bottleneck: {reason}[/]")

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {message}")

    def final_table(self, stages: list[dict[str, Any]]) -> None:
        t = Table("stage", "ok/sent", "req/s", "out tok/s", "TTFT p50", "TTFT p99", "TPOT p50", "ITL p99",
                  "e2e p50", "errors", title="load test summary (latencies in ms)")
        ms = lambda d, k: f"{1000 * d[k]:.1f}" if d else "-"  # noqa: E731
        for s in stages:
            t.add_row(s["id"], f"{s['completed']}/{s['requests']}",
                      f"{s['requestThroughput']:.2f}", f"{s['outputTokensPerS']:.0f}", ms(s["ttft"], "p50"),
                      ms(s["ttft"], "p99"), ms(s["tpot"], "p50"), ms(s["itl"], "p99"), ms(s["e2e"], "p50"),
                      ", ".join(f"{k}={v}" for k, v in s["errors"].items()) or "0")
        for column in t.columns:
            column.overflow = "fold"  # a narrow terminal wraps a cell; nothing is cut to "…"
        # in a pipe or a log file there is no screen to fit: print the table at its natural width
        if self.console.is_terminal:
            self.console.print(t)
        else:
            natural = Measurement.get(self.console, self.console.options.update_width(1000), t).maximum
            Console(stderr=True, width=natural).print(t)
