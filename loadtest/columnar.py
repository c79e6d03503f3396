"""The request records' columnar copy: their scalar fields as Parquet, one file per stage.

``requests.jsonl`` stays the primary record: it is appended and flushed per request, so a killed run
keeps every finished request. But reading it means parsing JSON, and an hour of load at 3,000 req/s
is ten million lines (about 4 GB, most of it per-chunk timestamps): the analysis would need minutes
and tens of GB. So after each stage the writer also stores that stage's records column by column
(``columns/<file>-<stage>.parquet``, written to a temporary name and renamed, never half there) and
records in ``columns/manifest.json`` how many bytes of the JSONL the Parquet files cover.

A reader takes the Parquet files for the covered prefix and parses only the JSONL beyond it (the
stage a crash interrupted). When the JSONL is shorter than the manifest says (it was cut or
replaced), the copy is ignored and the JSONL read whole: the JSONL always wins.

Why Parquet (pyarrow): the field's columnar format, typed, compressed, and read at memory speed by
pandas; the scalar fields of ten million records take about 300 MB on disk and a few seconds to load.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .records import RequestRecord, round_time

COLUMNS_DIR = "columns"
MANIFEST = "manifest.json"
#: the record fields the statistics use, in this order; the per-chunk timestamps stay in the JSONL
FIELDS = ("stage", "i", "scheduled", "sent", "first", "end", "inputTokens", "outputTokens", "status", "error",
          "warmup", "adapter")
SCHEMA = pa.schema([
    ("stage", pa.string()), ("i", pa.int64()), ("scheduled", pa.float64()), ("sent", pa.float64()),
    ("first", pa.float64()), ("end", pa.float64()), ("inputTokens", pa.float64()), ("outputTokens", pa.float64()),
    ("status", pa.float64()), ("error", pa.string()), ("warmup", pa.bool_()), ("adapter", pa.string()),
])


def stage_table(records: Iterable[RequestRecord]) -> pa.Table:
    """One stage's records as a typed table with the same values the JSONL holds."""
    recs = list(records)
    cols: dict[str, list[Any]] = {
        "stage": [r.stage for r in recs], "i": [r.i for r in recs],
        "scheduled": [round_time(r.scheduled) for r in recs], "sent": [round_time(r.sent) for r in recs],
        "first": [round_time(r.first) for r in recs], "end": [round_time(r.end) for r in recs],
        "inputTokens": [r.inputTokens for r in recs], "outputTokens": [r.outputTokens for r in recs],
        "status": [r.status for r in recs], "error": [r.error for r in recs], "warmup": [r.warmup for r in recs],
        "adapter": [r.adapter for r in recs],
    }
    return pa.table(cols, schema=SCHEMA)


def _read_stage(path: Path) -> pa.Table:
    """One stage's file in SCHEMA's layout; a file written before a field existed gets it as nulls."""
    table = pq.read_table(path)
    for field in SCHEMA:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(SCHEMA.names).cast(SCHEMA)


def write_stage(run_dir: Path, jsonl_name: str, stage: str, table: pa.Table) -> Path:
    """Store one stage's table and move the manifest's coverage to the JSONL's current size.

    Call it after the stage's last record was flushed to ``jsonl_name``: the coverage is the size of
    the JSONL at that moment, so it must hold exactly the records of the stages written so far.
    """
    folder = Path(run_dir) / COLUMNS_DIR
    folder.mkdir(exist_ok=True)
    base = jsonl_name.removesuffix(".jsonl")
    path = folder / f"{base}-{_safe(stage)}.parquet"
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    manifest = _read_manifest(folder)
    entry = manifest.setdefault(jsonl_name, {"files": [], "rows": 0})
    if path.name not in entry["files"]:
        entry["files"].append(path.name)
        entry["rows"] += table.num_rows
    entry["jsonlBytes"] = (Path(run_dir) / jsonl_name).stat().st_size
    tmp_manifest = folder / (MANIFEST + ".tmp")
    tmp_manifest.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp_manifest, folder / MANIFEST)
    return path


def _safe(stage: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stage)


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        doc = json.loads((folder / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def read_covered(run_dir: Path, jsonl_name: str) -> tuple[pd.DataFrame | None, int]:
    """(the records the columnar copy holds, the JSONL byte offset they end at); (None, 0) without one.

    The copy is used only when the JSONL is at least as long as the bytes it covers and every file
    it lists is there; otherwise the caller reads the JSONL whole.
    """
    folder = Path(run_dir) / COLUMNS_DIR
    entry = _read_manifest(folder).get(jsonl_name)
    jsonl = Path(run_dir) / jsonl_name
    if not entry or not jsonl.is_file():
        return None, 0
    covered = int(entry.get("jsonlBytes") or 0)
    files = [folder / name for name in entry.get("files") or []]
    if covered <= 0 or jsonl.stat().st_size < covered or not files or not all(f.is_file() for f in files):
        return None, 0
    try:
        table = pa.concat_tables([_read_stage(f) for f in files])
    except (OSError, pa.ArrowException):
        return None, 0  # a damaged copy: the JSONL is the record
    if table.num_rows != int(entry.get("rows") or -1):
        return None, 0
    return table.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get), covered
