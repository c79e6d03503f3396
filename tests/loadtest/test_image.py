"""The load tester's image (docker/loadtest.Dockerfile), checked as far as a machine without a container
runtime can: pinned, non-root, the uid the Job runs as, and a package set the pod's entry points
need nothing beyond."""

from __future__ import annotations

import re
import subprocess
import sys

from components.load_generator import UID

from .conftest import REPO

DOCKERFILE = (REPO / "docker" / "loadtest.Dockerfile").read_text()


def _pins(path: str) -> dict[str, str]:
    pins = {}
    for line in (REPO / path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"\[.*\]", "", name).lower().replace("_", "-")] = version.strip()
    return pins


def test_the_image_is_pinned_slim_and_non_root():
    (base,) = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", base)
    assert re.search(rf"^USER {UID}$", DOCKERFILE, re.M)
    assert 'ENTRYPOINT ["python", "-m", "loadtest"]' in DOCKERFILE
    assert "pip install -r requirements-loadgen.txt -c requirements.lock" in DOCKERFILE
    assert set(re.findall(r"^COPY (\S+)/ ", DOCKERFILE, re.M)) == {"loadtest", "stacks"}


def test_the_image_pins_are_the_projects_pins():
    image, project, lock = _pins("requirements-loadgen.txt"), _pins("requirements.txt"), _pins("requirements.lock")
    assert image and all(project.get(name) == version == lock.get(name) for name, version in image.items()), image
    assert not {"pulumi", "pulumi-gcp", "matplotlib", "pytest"} & set(image)


#: what the project installs but the image does not: importing any of them in the pod path fails
_BLOCKER = """
import importlib.abc, sys
BLOCKED = {"pulumi", "pulumi_gcp", "pulumi_kubernetes", "matplotlib", "kubernetes_validate", "pytest",
           "openai", "text_generation", "tritonclient", "markdown_it", "jsonschema", "analysis", "components",
           "recommend", "offline"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not in the load tester's image")
sys.meta_path.insert(0, Block())
import loadtest.cli, loadtest.bench, loadtest.merge, loadtest.bucket, loadtest.pods, loadtest.targets, gcsfs
import fsspec
fsspec.filesystem("gs", token="anon")
from loadtest.cli import main
for sub in ("run", "merge", "upload"):
    try:
        main([sub, "--help"])
    except SystemExit as exc:
        assert exc.code == 0, sub
"""


def test_the_pods_entry_points_need_nothing_outside_the_image():
    done = subprocess.run([sys.executable, "-c", _BLOCKER], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    # each entry point printed its own help: run's --pods, merge's --partial, upload's --once
    assert all(flag in done.stdout for flag in ("--pods", "--partial", "--once"))
