"""Read result directories (docs/results-format.md, versions 1 and 2) into plain Python + pandas objects.

A run directory is self-describing: ``run.json`` (written at start) says what was run against what
and at what cost; ``requests.jsonl`` holds one line per finished request; ``summary.json`` holds the
load tester's own per-stage statistics; ``predicted.jsonl`` (same record format) holds the same
requests as the stack's performance model serves them (``loadtest/model_check.py``). A run that was
killed keeps its requests but may lack a summary and end in a half-written line: such runs load with
a warning, because every completed request is still a measurement. An unknown ``formatVersion`` is
refused: guessing at a format we do not know would silently produce wrong numbers.
"""

from __future__ import annotations

import glob
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loadtest.columnar import FIELDS, read_covered
from loadtest.metrics_scrape import metric_role
from loadtest.results import PREDICTED_FILE, REQUESTS_FILE

from .errors import AnalysisError

SUPPORTED_FORMAT_VERSIONS = (1, 2)

# The scalar request fields the statistics need; ``chunks`` is not loaded (it is by far the largest
# field, and the table's latency metrics are defined on the timestamps alone).
REQUEST_FIELDS = FIELDS  # the scalar fields of a request record (one list: loadtest/columnar.py)
_FLOAT_FIELDS = ("scheduled", "sent", "first", "end", "inputTokens", "outputTokens", "status")  # NaN when absent
# ``"chunks":[[t,n],[t,n],...]``: a list of number pairs, nothing nested deeper, no strings.
_CHUNKS = re.compile(r'"chunks"\s*:\s*\[(?:\s*\[[^\[\]]*\]\s*,?)*\s*\]')

@dataclass
class Run:
    """One load-test run, as read from its directory."""

    path: Path
    run_id: str
    stack: str
    target: str
    modelled: bool
    partial: bool
    format_version: int
    tool_version: str | None
    config: dict[str, Any]
    spec: dict[str, Any]
    summary: dict[str, Any] | None
    requests: pd.DataFrame
    server_metrics: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    # the model's replay of each stage (predicted.jsonl); empty for runs made without the model check
    predicted: pd.DataFrame = field(default_factory=lambda: _empty_requests())

    @property
    def source(self) -> str:
        """``modelled`` (simulated endpoint) or ``measured`` (a real server): never mixed silently."""
        return "modelled" if self.modelled else "measured"

    @property
    def predicted_stages(self) -> set[str]:
        """Stages decided on the model's replay: those of a simulated endpoint that the model replayed.

        A simulated endpoint's served timing is the model's timing plus whatever the host adds (CPU
        contention, scheduling); the replay is the model alone, deterministic for a seed. So its
        figures decide, and the served ones are the check (``model_check``). A real endpoint's
        measurement always decides.
        """
        if not self.modelled or self.predicted.empty:
            return set()
        return set(self.predicted["stage"].dropna().astype(str))

    def deciding_requests(self) -> pd.DataFrame:
        """The records verdicts are computed from: the replay for ``predicted_stages``, else the measured."""
        stages = self.predicted_stages
        if not stages:
            return self.requests
        rest = self.requests.loc[~self.requests["stage"].astype(str).isin(stages)]
        return pd.concat([self.predicted, rest], ignore_index=True)


def find_run_dirs(args: list[str]) -> list[Path]:
    """Expand each argument (a run directory, a directory holding runs, or a glob) to run directories."""
    if not args:
        raise AnalysisError("RESULTS", "no results given", "pass run directories, parents of them, or globs "
                            "(e.g. results/*/*)")
    found: list[Path] = []
    for arg in args:
        matches = sorted(glob.glob(arg)) if glob.has_magic(arg) else [arg]
        if not matches:
            raise AnalysisError(arg, "the glob matches nothing", "check the path (quote globs in the shell)")
        hits: list[Path] = []
        for m in matches:
            p = Path(m)
            if (p / "run.json").is_file():
                hits.append(p)
            elif p.is_dir():
                hits.extend(sorted(q.parent for q in p.rglob("run.json")))
        if not hits:
            what = "does not exist" if not any(Path(m).exists() for m in matches) else "holds no run.json"
            raise AnalysisError(arg, f"{what}: not a results directory",
                                "pass results/<stack>/<run-id> directories written by `python -m loadtest run`")
        found.extend(hits)
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return unique


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise AnalysisError(str(path), f"is not valid JSON ({exc.msg} at line {exc.lineno})",
                            "the file is damaged; re-run the load test or remove the directory") from exc
    if not isinstance(data, dict):
        raise AnalysisError(str(path), "is not a JSON object", "re-run the load test")
    return data


def _check_version(path: Path, doc: dict[str, Any]) -> int:
    version = doc.get("formatVersion")
    if version is None:
        raise AnalysisError(str(path), "has no `formatVersion`",
                            "results must be written by `python -m loadtest run` (docs/results-format.md)")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        supported = " and ".join(map(str, SUPPORTED_FORMAT_VERSIONS))
        raise AnalysisError(str(path), f"`formatVersion` {version!r} is not supported (this analysis reads "
                            f"versions {supported})",
                            "upgrade gke-llm-bench, or re-run the load test with this version")
    return int(version)


def read_requests(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Read ``requests.jsonl`` (or ``predicted.jsonl``) into a DataFrame of the scalar fields.

    The stages the load tester also stored column by column (``loadtest/columnar.py``) are read from
    Parquet; only the JSONL beyond them (a stage a crash interrupted, or a run written before the
    columnar copy existed) is parsed. A truncated last line is dropped with a warning.
    """
    if not path.is_file():
        return _empty_requests(), [f"{path}: missing (no request finished)"]
    covered, offset = read_covered(path.parent, path.name)
    with open(path, "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8").rstrip()
    tail, warnings = _parse_jsonl(text, path, offset)
    if covered is None:
        if tail is None:
            return _empty_requests(), [*warnings, f"{path}: empty (no request finished)"]
        return tail, warnings
    covered = _typed_requests(covered[list(REQUEST_FIELDS)], path)
    return (covered if tail is None else pd.concat([covered, tail], ignore_index=True)), warnings


def _parse_jsonl(text: str, path: Path, offset: int) -> tuple[pd.DataFrame | None, list[str]]:
    """Records of JSONL text, typed; None when it holds none.

    Speed matters (a crash can leave a long stage uncovered): the per-chunk timestamps, by far the
    largest field and not used by the statistics, are cut out with one regular-expression pass, and
    the rest is parsed by one C-level ``json.loads`` over the joined lines (no per-line Python). Only
    when that fails do we look line by line, to tell a truncated tail (a killed run: warn and drop
    it) from damage in the middle (refuse, naming the line).
    """
    warnings: list[str] = []
    where = "" if not offset else f" after byte {offset:,}, the part without a columnar copy"
    if not text:
        return None, warnings
    cut = text.rfind("\n")
    last = text[cut + 1:]
    try:
        json.loads(last)
    except json.JSONDecodeError:
        warnings.append(f"{path}: last line (line {text.count(chr(10)) + 1}{where}) is truncated and was dropped "
                        "(the run was interrupted while writing it)")
        text = text[:cut] if cut >= 0 else ""
    body = _CHUNKS.sub('"chunks":null', text).replace("\r\n", "\n").replace("\n", ",")
    try:
        records = json.loads("[" + body + "]")
    except json.JSONDecodeError:
        records = []  # slow path, only for damaged files or blank lines: find the culprit
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(_CHUNKS.sub('"chunks":null', line)))
            except json.JSONDecodeError as exc:
                raise AnalysisError(f"{path}:{n}{where}", f"is not valid JSON ({exc.msg})",
                                    "the file is damaged in the middle; re-run the load test") from exc
    if not records:
        return None, warnings
    df = pd.DataFrame.from_records(records, columns=list(REQUEST_FIELDS))
    return _typed_requests(df, path), warnings


def _empty_requests() -> pd.DataFrame:
    return _typed_requests(pd.DataFrame({f: [] for f in REQUEST_FIELDS}), None)


def _typed_requests(df: pd.DataFrame, path: Path | None) -> pd.DataFrame:
    missing = [f for f in ("stage", "sent", "end", "outputTokens") if df[f].isna().all() and len(df)]
    if missing:
        raise AnalysisError(str(path), f"request records lack {', '.join(missing)}",
                            "requests.jsonl must follow docs/results-format.md")
    for f in _FLOAT_FIELDS:
        df[f] = pd.to_numeric(df[f], errors="coerce").astype("float64")
    df["stage"] = df["stage"].astype("string")
    df["error"] = df["error"].astype("string")
    df["adapter"] = df["adapter"].astype("string")
    df["warmup"] = df["warmup"].fillna(False).astype(bool)
    return df


def read_server_metrics(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Parse ``server_metrics.jsonl`` into long form (t, stage, role, family, value), summed over labels."""
    columns = ["t", "stage", "role", "family", "value"]
    if not path.is_file():
        return pd.DataFrame(columns=columns), []
    warnings: list[str] = []
    rows_t: list[float] = []
    rows_stage: list[str] = []
    rows_family: list[str] = []
    rows_role: list[str] = []
    rows_value: list[float] = []
    roles: dict[str, str] = {}  # series key -> role ("" when it plays none), decided once per key
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    for n, line in enumerate(lines, 1):
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):
                warnings.append(f"{path}: last line is truncated and was dropped")
                break
            raise AnalysisError(f"{path}:{n}", "is not valid JSON",
                                "the file is damaged; re-run the load test") from None
        samples = doc.get("samples") or {}
        for key, value in samples.items():
            role = roles.get(key)
            if role is None:
                role = roles[key] = metric_role(key) or ""
            if role and value is not None:
                rows_t.append(float(doc.get("t", np.nan)))
                rows_stage.append(str(doc.get("stage")))
                rows_family.append(key.split("{", 1)[0])
                rows_role.append(role)
                rows_value.append(float(value))
    df = pd.DataFrame({"t": rows_t, "stage": rows_stage, "role": rows_role, "family": rows_family,
                       "value": rows_value})
    if df.empty:
        return pd.DataFrame(columns=columns), warnings
    df = df.groupby(["t", "stage", "role", "family"], as_index=False, sort=False)["value"].sum()
    return df[columns], warnings


def _spec_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The stack's spec summary: top-level ``spec`` or ``outputs.spec`` (both are documented)."""
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        outputs = doc.get("outputs")
        spec = outputs.get("spec") if isinstance(outputs, dict) else None
    return spec if isinstance(spec, dict) else {}


def _config_of(doc: dict[str, Any]) -> dict[str, Any]:
    for key in ("config", "load", "loadConfig"):
        value = doc.get(key)
        if isinstance(value, dict):
            return value
    return {}


def load_run(path: Path) -> Run:
    """Read one run directory; refuse unknown versions, warn about partial runs."""
    run_path = path / "run.json"
    if not run_path.is_file():
        raise AnalysisError(str(path), "has no run.json", "pass a results/<stack>/<run-id> directory")
    run_doc = _read_json(run_path)
    version = _check_version(run_path, run_doc)
    warnings: list[str] = []
    summary: dict[str, Any] | None = None
    summary_path = path / "summary.json"
    if summary_path.is_file():
        summary = _read_json(summary_path)
        if _check_version(summary_path, summary) != version:
            raise AnalysisError(str(summary_path), "has a different `formatVersion` from run.json",
                                "the directory mixes two runs; re-run the load test")
    else:
        warnings.append(f"{path}: no summary.json (the run did not finish a stage); statistics are "
                        "recomputed from requests.jsonl")
    requests, w = read_requests(path / REQUESTS_FILE)
    warnings += w
    metrics, w = read_server_metrics(path / "server_metrics.jsonl")
    warnings += w
    predicted = _empty_requests()
    if (path / PREDICTED_FILE).is_file():
        predicted, pw = read_requests(path / PREDICTED_FILE)
        warnings += pw
    # v2's ``complete: false`` marks a run killed between stages (the last per-stage rewrite survives).
    incomplete = summary is not None and (bool(summary.get("partial")) or summary.get("complete") is False)
    partial = summary is None or incomplete or any("truncated" in x for x in w)
    if incomplete:
        warnings.append(f"{path}: summary.json says the run did not finish (partial or incomplete)")
    if summary is not None:
        warnings += [f"{path}: load tester: {x}" for x in summary.get("warnings") or [] if isinstance(x, str)]
    stack = run_doc.get("stack") or _spec_of(run_doc).get("stack")
    if not stack:
        raise AnalysisError(str(run_path), "has no `stack`", "results must be written by `python -m loadtest run`")
    modelled = run_doc.get("modelled")
    target = run_doc.get("target") or "url"
    if modelled is None:
        modelled = target == "sim"
    spec = _spec_of(run_doc) or (_spec_of(summary) if summary else {})
    if not spec:
        warnings.append(f"{run_path}: no spec summary; cost and hardware columns are empty")
    return Run(
        path=path, run_id=str(run_doc.get("runId") or path.name), stack=str(stack), target=str(target),
        modelled=bool(modelled), partial=partial, format_version=version,
        tool_version=_tool_version(run_doc), config=_config_of(run_doc) or (_config_of(summary) if summary else {}),
        spec=spec, summary=summary, requests=requests, server_metrics=metrics, warnings=warnings,
        predicted=predicted,
    )


def _tool_version(doc: dict[str, Any]) -> str | None:
    for key in ("toolVersion", "tool_version", "version"):
        if isinstance(doc.get(key), str):
            return doc[key]
    tool = doc.get("tool")
    if isinstance(tool, dict):
        return str(tool.get("version")) if tool.get("version") is not None else None
    return str(tool) if tool is not None else None


def load_runs(args: list[str]) -> list[Run]:
    """All runs the arguments name, in a stable order (stack, then run id)."""
    runs = [load_run(p) for p in find_run_dirs(args)]
    return sorted(runs, key=lambda r: (r.stack, r.run_id))

