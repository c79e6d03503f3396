"""The results writer: one directory per run, every measurement on disk the moment it exists.

``requests.jsonl`` and ``server_metrics.jsonl`` are appended one line per record and flushed at once
(``predicted.jsonl``, the model's replay of each stage, after each stage), so a run killed with
SIGKILL keeps every completed request (the OS holds flushed data even when the process dies).
``summary.json`` is rewritten after every stage through a temporary file and ``os.replace``, so a
reader never sees half a summary. Layout: docs/results-format.md.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from stacks.secret_values import REDACTED, SECRET_FIELD, looks_like_secret

from .columnar import stage_table, write_stage
from .records import RequestRecord

FORMAT_VERSION = 2
REQUESTS_FILE = "requests.jsonl"
PREDICTED_FILE = "predicted.jsonl"
#: keys of the stack outputs that are secrets and never leave memory
SECRET_OUTPUT_KEYS = frozenset({"apiKey", "kubeconfig", "hfToken"})


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(2)


def public_outputs(outputs: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stack outputs without any secret value."""
    if outputs is None:
        return None
    return {k: v for k, v in outputs.items() if k not in SECRET_OUTPUT_KEYS}


def redact_url(url: str | None) -> str | None:
    """A URL as it may be written to results: no password in it, no key or token in its query."""
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", f":{REDACTED}@", 1)
    query = urlencode([(k, REDACTED if SECRET_FIELD.search(k) or looks_like_secret(v) else v)
                       for k, v in parse_qsl(parts.query, keep_blank_values=True)], safe="<>")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=str)


class ResultsWriter:
    def __init__(self, root: Path, stack: str, run_id: str):
        self.dir = Path(root) / stack / run_id
        if self.dir.exists():
            raise FileExistsError(f"{self.dir} already exists")
        self.dir.mkdir(parents=True)
        self._requests = open(self.dir / REQUESTS_FILE, "a", encoding="utf-8")  # noqa: SIM115 - held open
        self._metrics = open(self.dir / "server_metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self._predicted: TextIO | None = None  # opened by the first stage the model check predicts
        self.requests_written = 0

    def write_json(self, name: str, obj: Any) -> Path:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(obj, indent=2, allow_nan=False, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    def write_request(self, rec: RequestRecord) -> None:
        self._requests.write(_dump(rec.as_dict()) + "\n")
        self._requests.flush()
        self.requests_written += 1

    def write_predicted(self, records: list[RequestRecord]) -> None:
        """One stage's requests as the performance model serves them (``model_check``), same format."""
        if self._predicted is None:
            self._predicted = open(self.dir / PREDICTED_FILE, "a", encoding="utf-8")  # noqa: SIM115
        self._predicted.writelines(_dump(r.as_dict()) + "\n" for r in records)
        self._predicted.flush()

    def write_columns(self, jsonl_name: str, stage: str, records: list[RequestRecord]) -> None:
        """After a stage: its records' columnar copy (``columnar.py``), covering the JSONL written so far."""
        handle = self._predicted if jsonl_name == PREDICTED_FILE else self._requests
        if handle is not None:
            handle.flush()
        write_stage(self.dir, jsonl_name, stage, stage_table(records))

    def write_scrape(self, entry: dict[str, Any]) -> None:
        self._metrics.write(_dump(entry) + "\n")
        self._metrics.flush()

    def close(self) -> None:
        for f in (self._requests, self._metrics, self._predicted):
            if f is not None and not f.closed:
                f.close()
