"""A pod's run directory streamed to a bucket as it is written, and read back for the merge.

Cloud Storage objects cannot be appended to, and the load generator's service account may only
*create* objects (``roles/storage.objectCreator``: no read, no overwrite, no delete). So every file
is stored as a sequence of new objects, ``<dest>/<file>/<seq:06d>``:
- an append-only file (``*.jsonl``) is the concatenation of its parts: each upload carries the
  complete lines written since the last one, so a pod that dies keeps every line already shipped;
- a snapshot file (``run.json``, ``summary.json``) is its latest part, uploaded whenever it changes.
What has been shipped is remembered in ``.mirror.json`` beside the run directory, so a restarted
uploader never ships a line twice.

Storage goes through fsspec: ``gs://`` with gcsfs in the cluster, a plain local path in tests and
on a laptop, the same code either way.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec

APPEND_SUFFIX = ".jsonl"
SNAPSHOTS = ("run.json", "summary.json")
STATE_FILE = ".mirror.json"


def _is_local(fs: Any) -> bool:
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return bool({"file", "local"} & set(protocols))


def _fs(url: str) -> tuple[Any, str]:
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path.rstrip("/")


class Mirror:
    """Ships one run directory's new data to ``dest`` (``gs://bucket/<run>/<pod>`` or a local path)."""

    def __init__(self, run_dir: Path, dest: str):
        self.run_dir = Path(run_dir)
        self.fs, self.dest = _fs(dest)
        self.state_path = self.run_dir.parent / f"{self.run_dir.name}{STATE_FILE}"
        self.state: dict[str, Any] = (json.loads(self.state_path.read_text())
                                      if self.state_path.exists() else {"offsets": {}, "hashes": {}, "seq": {}})

    def _put(self, name: str, data: bytes) -> None:
        seq = self.state["seq"].get(name, 0)
        if _is_local(self.fs):  # object stores have no directories (and gcsfs would read a mkdir as "create a bucket")
            self.fs.mkdirs(f"{self.dest}/{name}", exist_ok=True)
        with self.fs.open(f"{self.dest}/{name}/{seq:06d}", "wb") as f:
            f.write(data)
        self.state["seq"][name] = seq + 1

    def sync(self) -> int:
        """Upload what is new; returns the bytes shipped."""
        shipped = 0
        for path in sorted(self.run_dir.glob(f"*{APPEND_SUFFIX}")):
            offset = self.state["offsets"].get(path.name, 0)
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
            whole = data[: data.rfind(b"\n") + 1]  # complete lines only; the rest goes next time
            if whole:
                self._put(path.name, whole)
                self.state["offsets"][path.name] = offset + len(whole)
                shipped += len(whole)
        for name in SNAPSHOTS:
            path = self.run_dir / name
            if not path.exists():
                continue
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if self.state["hashes"].get(name) != digest:
                self._put(name, data)
                self.state["hashes"][name] = digest
                shipped += len(data)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state))
        tmp.replace(self.state_path)
        return shipped


def read_pod(url: str) -> dict[str, bytes]:
    """One pod's files from the bucket: append files joined, snapshots at their latest."""
    fs, root = _fs(url)
    files: dict[str, bytes] = {}
    if not fs.exists(root):
        return files
    for entry in fs.ls(root, detail=False):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        parts = sorted(p for p in fs.ls(entry, detail=False) if p.rstrip("/").rsplit("/", 1)[-1].isdigit())
        if not parts:
            continue
        if name.endswith(APPEND_SUFFIX):
            files[name] = b"".join(fs.cat_file(p) for p in parts)
        else:
            files[name] = fs.cat_file(parts[-1])
    return files


def pod_dirs(url: str) -> dict[int, str]:
    """The pods' directories under a run's prefix, by index."""
    fs, root = _fs(url)
    if not fs.exists(root):
        return {}
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    out = {}
    for entry in fs.ls(root, detail=False):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        if name.isdigit():
            out[int(name)] = entry if _is_local(fs) else f"{protocol}://{entry}"
    return out


def find_run_dir(root: Path) -> Path | None:
    """The one run directory under a results root (``<root>/<stack>/<run>/run.json``)."""
    found = sorted(p.parent for p in Path(root).glob("*/*/run.json"))
    return found[0] if found else None


def watch(root: Path, dest: str, interval: float, stopping: Callable[[], bool]) -> int:
    """Ship the run under ``root`` every ``interval`` seconds until ``stopping()``; then a last sync.

    The load generator's sidecar: Kubernetes stops it (SIGTERM) once the load tester has exited,
    and the final sync ships the last lines and the final summary."""
    mirror: Mirror | None = None
    shipped = 0
    while True:
        last_round = stopping()
        if mirror is None and (run_dir := find_run_dir(root)) is not None:
            mirror = Mirror(run_dir, dest)
        if mirror is not None:
            shipped += mirror.sync()
        if last_round:
            return shipped
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline and not stopping():
            time.sleep(0.1)
