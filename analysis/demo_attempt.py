"""One demo attempt's ledger, ``<results>/<attempt>/demo-attempt.json``: what it runs, which runs it
finished (and where), which failed and why.

Each ``python -m analysis demo`` starts a new attempt in its own directory, so a later comparison
never mixes two attempts' runs by accident; ``--resume`` continues the latest attempt, reusing every
run it finished and redoing the rest. The ledger is rewritten (atomically) after every run, so an
attempt killed at any moment resumes from its last finished run.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import AnalysisError

LEDGER = "demo-attempt.json"


@dataclass
class Attempt:
    dir: Path
    key: dict[str, Any]  # what the attempt runs: a resume must ask for the same
    runs: dict[str, str] = field(default_factory=dict)  # "<stack>/<run name>" → run directory
    failed: dict[str, str] = field(default_factory=dict)  # "<stack>/<run name>" → why
    complete: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def stamp(self) -> str:
        return self.dir.name

    @classmethod
    def new(cls, results: Path, key: dict[str, Any]) -> Attempt:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path, n = results / stamp, 1
        while path.exists():  # two attempts in one second
            n += 1
            path = results / f"{stamp}-{n}"
        path.mkdir(parents=True)
        attempt = cls(path, key)
        attempt._write()
        return attempt

    @classmethod
    def resume(cls, results: Path, key: dict[str, Any]) -> Attempt:
        """The latest attempt under ``results``; it must have been started with the same stacks and workloads."""
        ledgers = sorted(results.glob(f"*/{LEDGER}"), key=lambda p: p.parent.name)
        if not ledgers:
            raise AnalysisError("--resume", f"no demo attempt under {results} to resume",
                                "run the demo without --resume to start one")
        doc = json.loads(ledgers[-1].read_text())
        attempt = cls(ledgers[-1].parent, doc["key"], dict(doc.get("runs") or {}), {}, bool(doc.get("complete")))
        differs = sorted(k for k in set(key) | set(attempt.key) if key.get(k) != attempt.key.get(k))
        if differs:
            raise AnalysisError("--resume", f"the latest attempt ({attempt.dir}) ran different {', '.join(differs)}",
                                "pass the same --stacks/--batch-levels/--prefill-levels/--rate-seconds/--slo "
                                "as that attempt, or drop --resume to start a new one")
        attempt._write()
        return attempt

    def finished(self, stack: str, name: str) -> Path | None:
        """The run directory of a run this attempt already finished, if it is still whole."""
        path = self.runs.get(f"{stack}/{name}")
        if path is None:
            return None
        summary = Path(path) / "summary.json"
        try:
            if json.loads(summary.read_text()).get("complete") is True:
                return Path(path)
        except (OSError, ValueError):
            pass
        return None

    def record(self, stack: str, name: str, path: Path) -> None:
        with self._lock:
            self.runs[f"{stack}/{name}"] = str(path)
            self.failed.pop(f"{stack}/{name}", None)
            self._write()

    def fail(self, stack: str, name: str, why: str) -> None:
        with self._lock:
            self.failed[f"{stack}/{name}"] = why
            self._write()

    def close(self) -> None:
        with self._lock:
            self.complete = not self.failed
            self._write()

    def _write(self) -> None:
        doc = {"key": self.key, "runs": self.runs, "failed": self.failed, "complete": self.complete}
        tmp = self.dir / (LEDGER + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        os.replace(tmp, self.dir / LEDGER)
