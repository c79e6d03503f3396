"""The request records' columnar copy: the same records as the JSONL, and the JSONL always wins."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from analysis.loader import read_requests
from loadtest.columnar import COLUMNS_DIR, MANIFEST, read_covered, stage_table, write_stage
from loadtest.records import RequestRecord
from loadtest.results import REQUESTS_FILE, ResultsWriter


def _record(stage: str, i: int, ok: bool = True) -> RequestRecord:
    return RequestRecord(stage=stage, i=i, scheduled=i * 0.1234567891, warmup=i == 0, sent=i * 0.1234567891 + 0.001,
                         first=i * 0.13 + 0.05 if ok else None, end=i * 0.13 + 0.9 if ok else None,
                         chunks=[(i * 0.13 + 0.05, 1), (i * 0.13 + 0.9, 63)] if ok else [], inputTokens=128,
                         outputTokens=64 if ok else 0, status=200 if ok else 503, error=None if ok else "http_5xx")


def _write(tmp_path: Path, stages: dict[str, list[RequestRecord]], columns_for: int) -> Path:
    """A run directory whose first ``columns_for`` stages got their columnar copy (the rest: a crash)."""
    w = ResultsWriter(tmp_path, "llama2-7b-g2", "run")
    for k, (stage, records) in enumerate(stages.items()):
        for r in records:
            w.write_request(r)
        if k < columns_for:
            w.write_columns(REQUESTS_FILE, stage, records)
    w.close()
    return w.dir


def _jsonl_only(run: Path) -> pd.DataFrame:
    moved = run.parent / "moved"
    shutil.move(str(run / COLUMNS_DIR), moved)
    try:
        return read_requests(run / REQUESTS_FILE)[0]
    finally:
        shutil.move(str(moved), run / COLUMNS_DIR)


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["stage", "i"]).reset_index(drop=True)


STAGES = {"0-batch-4": [_record("0-batch-4", i, ok=i != 3) for i in range(6)],
          "1-batch-8": [_record("1-batch-8", i) for i in range(6, 14)]}


def test_the_columnar_copy_reads_back_the_jsonl_records(tmp_path: Path) -> None:
    run = _write(tmp_path, STAGES, columns_for=2)
    covered, offset = read_covered(run, REQUESTS_FILE)
    assert covered is not None and len(covered) == 14 and offset == (run / REQUESTS_FILE).stat().st_size
    both, warnings = read_requests(run / REQUESTS_FILE)
    assert not warnings
    pd.testing.assert_frame_equal(_sorted(both), _sorted(_jsonl_only(run)))


def test_a_stage_without_its_copy_is_read_from_the_jsonl_tail(tmp_path: Path) -> None:
    run = _write(tmp_path, STAGES, columns_for=1)  # killed after stage 1's records, before its copy
    covered, offset = read_covered(run, REQUESTS_FILE)
    assert covered is not None and len(covered) == 6 and 0 < offset < (run / REQUESTS_FILE).stat().st_size
    both, _ = read_requests(run / REQUESTS_FILE)
    assert len(both) == 14
    pd.testing.assert_frame_equal(_sorted(both), _sorted(_jsonl_only(run)))


def test_a_jsonl_shorter_than_its_copy_wins(tmp_path: Path) -> None:
    run = _write(tmp_path, STAGES, columns_for=2)
    lines = (run / REQUESTS_FILE).read_text().splitlines(keepends=True)
    (run / REQUESTS_FILE).write_text("".join(lines[:5]))  # cut (or replaced) after the copy was made
    assert read_covered(run, REQUESTS_FILE) == (None, 0)
    assert len(read_requests(run / REQUESTS_FILE)[0]) == 5


def test_a_missing_or_damaged_file_falls_back_to_the_jsonl(tmp_path: Path) -> None:
    run = _write(tmp_path, STAGES, columns_for=2)
    (run / COLUMNS_DIR / "requests-1-batch-8.parquet").write_bytes(b"not parquet")
    assert read_covered(run, REQUESTS_FILE) == (None, 0)
    (run / COLUMNS_DIR / "requests-1-batch-8.parquet").unlink()
    assert read_covered(run, REQUESTS_FILE) == (None, 0)
    assert len(read_requests(run / REQUESTS_FILE)[0]) == 14


def test_rewriting_a_stage_does_not_count_its_rows_twice(tmp_path: Path) -> None:
    run = _write(tmp_path, {"0-batch-4": STAGES["0-batch-4"]}, columns_for=1)
    write_stage(run, REQUESTS_FILE, "0-batch-4", stage_table(STAGES["0-batch-4"]))
    manifest = json.loads((run / COLUMNS_DIR / MANIFEST).read_text())
    assert manifest[REQUESTS_FILE]["rows"] == 6 and len(manifest[REQUESTS_FILE]["files"]) == 1
