"""Run the real Pulumi program (``__main__.py``) under ``pulumi.runtime.set_mocks`` for one stack file.

This is the engine of the offline plan, the diff, and the component tests: no cloud, no Pulumi CLI.
Each run resets the root stack resource (set_mocks keeps the previous one otherwise), registers
with ``preview=False`` (so outputs computed by the mocks are known), and reads every registration
only after the program's outstanding RPCs and outputs have drained.

Secrets: a ``{secure: ...}`` value in the stack file, and every secret the spec needs but the file
lacks, is given to the program as a *placeholder* secret value (never a real one); the program
keeps it a Pulumi secret, so it reaches resource inputs wrapped, and rendering shows ``[secret]``.

Pulumi is imported inside the functions: ``import stacks`` must never import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import runpy
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stacks.cluster_spec import ClusterSpec, cluster_outputs
from stacks.config import PROJECT
from stacks.loader import any_spec_from_config, joined_cluster
from stacks.spec import StackSpec
from stacks.stack_yaml import read_stack_document

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "__main__.py"
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SECRET_SHOWN = "[secret]"
OFFLINE_ENV = "GKE_LLM_BENCH_OFFLINE_PLAN"
STACK_FILE_ENV = "GKE_LLM_BENCH_STACK_FILE"  # the stack file the program resolves relative paths against


def placeholder(key: str) -> str:
    """The value a secret gets offline: recognisable, so tests can prove it never leaks in plaintext."""
    return f"placeholder-secret-{key}-7c1e"


@dataclass
class Registered:
    """One resource registration as the engine would receive it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    state: dict[str, Any]
    custom_timeouts: dict[str, str]
    ignore_changes: list[str]
    dependencies: list[str]
    provider: str

    @property
    def is_component(self) -> bool:
        return not self.custom


@dataclass
class ProgramRun:
    stack: str
    spec: StackSpec | ClusterSpec  # a serving stack, or a cluster stack (role: cluster)
    resources: list[Registered]
    outputs: dict[str, Any]  # secret outputs hold SECRET_SHOWN
    secret_outputs: set[str]
    raw_outputs: dict[str, Any]  # plaintext of every output (tests check secrets never leak)
    placeholders: dict[str, str]  # secret config key -> placeholder value given to the program
    log: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def by_type(self, type_token: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, within: str | None = None) -> Registered:
        """The one resource of a type (``within``: under that component module, e.g. ``model_server``)."""
        found = [r for r in self.by_type(type_token) if within is None or f"gke-llm-bench:{within}:" in r.urn]
        if len(found) != 1:
            raise LookupError(f"expected one {type_token}, found {len(found)}")
        return found[0]


# -- mocks -----------------------------------------------------------------------------------------
#: what the mocks say a created cluster's endpoint and CA are (documentation range, RFC 5737); a
#: cluster stack's outputs carry the same, so a joining stack reads what that stack's plan shows
MOCK_ENDPOINT, MOCK_CA = "203.0.113.10", "TU9DSy1DQQ=="


def _computed_state(typ: str, name: str, inputs: dict[str, Any], project: str) -> dict[str, Any]:
    """Outputs the cloud would compute, with documentation-range addresses (RFC 5737)."""
    state = dict(inputs)
    if typ == "gcp:serviceaccount/account:Account":
        state["email"] = f"{inputs.get('accountId', name)}@{inputs.get('project', project)}.iam.gserviceaccount.com"
        state["name"] = f"projects/{inputs.get('project', project)}/serviceAccounts/{state['email']}"
    elif typ == "gcp:container/cluster:Cluster":
        state.update(endpoint=MOCK_ENDPOINT, masterAuth={"clusterCaCertificate": MOCK_CA})
    elif typ == "kubernetes:core/v1:Service" and (inputs.get("spec") or {}).get("type") == "LoadBalancer":
        state["status"] = {"loadBalancer": {"ingress": [{"ip": "198.51.100.20"}]}}
    return state


def referenced_outputs(spec: StackSpec | ClusterSpec) -> dict[str, Any] | None:
    """What the cluster stack that ``cluster.fromStack`` names would export, for the mocked
    StackReference: from its stack file when it is beside this one, else from this stack's own view."""
    if not isinstance(spec, StackSpec) or spec.shared_cluster is None:
        return None
    joined = joined_cluster(spec.shared_cluster, spec.source)
    if joined is not None:
        out = cluster_outputs(joined)
        account = f"{joined.names.node_service_account}@{joined.project}.iam.gserviceaccount.com"
    else:
        out = {"clusterName": spec.names.cluster, "clusterLocation": spec.location, "project": spec.project}
        account = f"nodes-cluster@{spec.project}.iam.gserviceaccount.com"
    return {**out, "endpoint": MOCK_ENDPOINT, "caCertificate": MOCK_CA, "nodeServiceAccount": account}


def _mocks(project: str, records: dict[str, dict[str, Any]], reference: dict[str, Any] | None = None):
    import pulumi
    from pulumi.runtime import mocks

    class Mocks(pulumi.runtime.Mocks):
        def __init__(self) -> None:
            # RegisterResource runs on executor threads: key by (type, name), never "the last one".
            self.inputs: dict[tuple[str, str], dict[str, Any]] = {}

        def new_resource(self, args: mocks.MockResourceArgs):
            self.inputs[(args.typ, args.name)] = args.inputs
            if args.typ == "pulumi:pulumi:StackReference":
                return f"{args.inputs.get('name')}", {"name": args.inputs.get("name"), "outputs": reference or {},
                                                     "secretOutputNames": []}
            return f"{args.name}-id", _computed_state(args.typ, args.name, args.inputs, project)

        def call(self, args: mocks.MockCallArgs):
            if args.token == "gcp:container/getCluster:getCluster":
                return {"name": args.args.get("name"), "location": args.args.get("location"),
                        "endpoint": "203.0.113.11", "masterAuths": [{"clusterCaCertificate": MOCK_CA}]}
            return {}

    class Monitor(mocks.MockMonitor):
        """Records what MockResourceArgs leaves out: parent, timeouts, ignore_changes, dependencies."""

        def __init__(self, m: Mocks) -> None:
            super().__init__(m)
            self.recorder = m  # the base class keeps it typed as the plain Mocks interface

        def ReadResource(self, request):
            """A read (a StackReference): recorded like a registration, so the plan shows what it reads."""
            response = super().ReadResource(request)
            records[response.urn] = {"parent": request.parent, "custom": True, "custom_timeouts": {},
                                     "ignore_changes": [], "dependencies": list(request.dependencies),
                                     "provider": request.provider,
                                     "inputs": self.recorder.inputs.get((request.type, request.name))}
            return response

        def RegisterResource(self, request):
            response = super().RegisterResource(request)
            if request.type != "pulumi:pulumi:Stack":
                ct = request.customTimeouts
                records[response.urn] = {
                    "parent": request.parent,
                    "custom": bool(request.custom),
                    "custom_timeouts": {k: v for k, v in (("create", ct.create), ("update", ct.update),
                                                          ("delete", ct.delete)) if v},
                    "ignore_changes": list(request.ignoreChanges),
                    "dependencies": list(request.dependencies),
                    "provider": request.provider,
                    "inputs": self.recorder.inputs.get((request.type, request.name)),
                }
            return response

    m = Mocks()
    return m, Monitor(m)


@contextlib.contextmanager
def _env(key: str, value: str) -> Iterator[None]:
    old = os.environ.get(key)
    os.environ[key] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def _config_for_runtime(flat: Mapping[str, Any],
                        spec: StackSpec | ClusterSpec) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """Config as the Pulumi CLI hands it to a program (strings; objects as JSON) plus placeholder secrets."""
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    placeholders: dict[str, str] = {}
    for full_key, value in flat.items():
        key = full_key if ":" in str(full_key) else f"{PROJECT}:{full_key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            name = key.split(":", 1)[1]
            placeholders[name] = config[key] = placeholder(name)
            secret_keys.append(key)
        elif isinstance(value, str):
            config[key] = value
        else:
            config[key] = json.dumps(value)
    needed = (spec.hf_token_key, spec.api_key_key, spec.kaggle_key_key) if isinstance(spec, StackSpec) else ()
    for short in needed:
        if short and f"{PROJECT}:{short}" not in config:
            placeholders[short] = config[f"{PROJECT}:{short}"] = placeholder(short)
            secret_keys.append(f"{PROJECT}:{short}")
    return config, secret_keys, placeholders


def _unwrap(value: Any) -> tuple[Any, Any]:
    """(shown, plaintext): secrets in ``shown`` become SECRET_SHOWN; ``plaintext`` keeps them (for tests)."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG_KEY) == SECRET_SIG:
            return SECRET_SHOWN, _unwrap(value.get("value"))[1]
        pairs = {k: _unwrap(v) for k, v in value.items()}
        return {k: p[0] for k, p in pairs.items()}, {k: p[1] for k, p in pairs.items()}
    if isinstance(value, list):
        items = [_unwrap(v) for v in value]
        return [p[0] for p in items], [p[1] for p in items]
    if isinstance(value, float) and value.is_integer():
        return int(value), int(value)
    return value, value


class ProgramError(Exception):
    """The program failed; ``str()`` is the message without a traceback."""


def load_config(path: Path) -> dict[str, Any]:
    return read_stack_document(path)


def run_stack_file(path: Path, name: str) -> ProgramRun:
    """Validate the stack file, then run ``__main__.py`` for it under mocks."""
    flat = load_config(path)
    spec = any_spec_from_config(flat, name, source=str(path))
    return run_program(name, flat, spec)


def _ensure_event_loop() -> None:
    """Give this thread an open event loop when it has none. Pulumi's mocks and ``_sync_await`` use
    ``asyncio.get_event_loop()``, which raises after an ``asyncio.run()`` in the same thread (it leaves
    no loop set): without this, planning after any asyncio code in one process fails."""
    policy = asyncio.get_event_loop_policy()
    try:
        loop = policy.get_event_loop()
    except RuntimeError:
        loop = None
    if loop is None or loop.is_closed():
        policy.set_event_loop(policy.new_event_loop())


def run_program(name: str, flat: Mapping[str, Any], spec: StackSpec | ClusterSpec) -> ProgramRun:
    import pulumi
    from pulumi.runtime import settings
    from pulumi.runtime.config import set_all_config
    from pulumi.runtime.stack import wait_for_rpcs
    from pulumi.runtime.sync_await import _sync_await

    started = time.perf_counter()
    config, secret_keys, placeholders = _config_for_runtime(flat, spec)
    records: dict[str, dict[str, Any]] = {}
    mocks, monitor = _mocks(spec.project, records, referenced_outputs(spec))
    logs: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logs.append(record.getMessage())

    logger = logging.getLogger(f"gke-llm-bench.plan.{name}")
    logger.propagate = False
    logger.handlers = [Capture()]
    settings.ROOT.set(None)  # set_mocks reuses an existing root stack: start each run from a fresh one
    _ensure_event_loop()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=name, preview=False, logger=logger, monitor=monitor)
    set_all_config(config, secret_keys)
    root = settings.get_root_resource()
    try:
        with _env(OFFLINE_ENV, "1"), _env(STACK_FILE_ENV, spec.source):
            runpy.run_path(str(PROGRAM), run_name="__main__")
            _sync_await(wait_for_rpcs())
    except pulumi.RunError as exc:
        raise ProgramError("\n".join([*logs, str(exc)])) from None
    finally:
        set_all_config({}, [])

    outputs: dict[str, Any] = {}
    raw_outputs: dict[str, Any] = {}
    secret_outputs: set[str] = set()
    for key, value in getattr(root, "outputs", {}).items():
        out = pulumi.Output.from_input(value)
        plain = _sync_await(out.future())
        if _sync_await(out.is_secret()):
            secret_outputs.add(key)
            outputs[key] = SECRET_SHOWN
        else:
            outputs[key] = plain
        raw_outputs[key] = plain

    resources = []
    registered = monitor.resources
    for urn, rec in records.items():
        typ, res_name = urn.split("::")[-2].split("$")[-1], urn.split("::")[-1]
        reg = registered.get(urn)
        state = reg.state if reg else {}
        inputs = rec["inputs"] or {}
        resources.append(Registered(urn=urn, type=typ, name=res_name, parent=rec["parent"], custom=rec["custom"],
                                    inputs=inputs, state=state, custom_timeouts=rec["custom_timeouts"],
                                    ignore_changes=rec["ignore_changes"], dependencies=rec["dependencies"],
                                    provider=rec["provider"]))
    return ProgramRun(stack=name, spec=spec, resources=resources, outputs=outputs, secret_outputs=secret_outputs,
                      raw_outputs=raw_outputs, placeholders=placeholders, log=logs,
                      seconds=time.perf_counter() - started)


def shown(value: Any) -> Any:
    """A resource input with secrets replaced by ``[secret]`` (what the plan prints)."""
    return _unwrap(value)[0]


def plaintext(value: Any) -> Any:
    """A resource input with secret wrappers removed (tests use it to search for leaks)."""
    return _unwrap(value)[1]
