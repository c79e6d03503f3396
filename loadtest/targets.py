"""Where the load goes: a deployed stack (its outputs), the stack's simulated endpoint, or any URL.

The stack outputs (docs/stack-outputs.md) come from ``pulumi stack output --json`` or a file saved
from it (``--outputs``). The API key, when the stack has one, is fetched with ``--show-secrets``
only then, kept in memory, and never written to results or logs. An in-cluster-only endpoint is
not guessed at: if nothing answers where the port-forward would listen, the error gives the exact
``kubectl port-forward`` command from the outputs.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from .errors import BadInput, Unreachable
from .protocols import DIALECTS

if TYPE_CHECKING:
    from stacks.spec import StackSpec

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Target:
    kind: str  # "gke" | "sim" | "url"
    base_url: str
    dialect: str
    model: str
    health_path: str
    metrics_url: str | None
    outputs: dict[str, Any] | None  # public outputs only (no secrets)
    api_key: str | None = field(default=None, repr=False)
    process: subprocess.Popen[str] | None = field(default=None, repr=False)
    kube_api: str | None = None  # where the server's Deployment can be read (an autoscaled server's replicas)

    @property
    def modelled(self) -> bool:
        return self.kind == "sim"

    @property
    def spec(self) -> dict[str, Any] | None:
        return (self.outputs or {}).get("spec")

    @property
    def autoscaled(self) -> bool:
        """The stack scales its server with an HPA (its replicas are worth recording)."""
        return bool(((self.spec or {}).get("server") or {}).get("autoscaling"))

    def close(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[str] | subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; by PID only."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


# -- stack outputs ---------------------------------------------------------------------------------
def spec_outputs(stack: str) -> dict[str, Any] | None:
    """Outputs computed offline from the committed stack file (no Pulumi): the spec and its $/h."""
    from stacks.errors import SpecErrors
    from stacks.loader import load_stack_file, resolve_stack_arg
    from stacks.outputs import stack_outputs

    try:
        name, path = resolve_stack_arg(stack)
        return stack_outputs(load_stack_file(path, name))
    except SpecErrors:
        return None


def stack_spec(stack: str) -> StackSpec | None:
    """The stack file's spec, for the model check (``model_check``); None without a valid file."""
    from stacks.errors import SpecErrors
    from stacks.loader import load_stack_file, resolve_stack_arg

    try:
        name, path = resolve_stack_arg(stack)
        return load_stack_file(path, name)
    except (SpecErrors, OSError):
        return None


def require_spec_outputs(stack: str) -> dict[str, Any]:
    from stacks.errors import SpecErrors
    from stacks.loader import load_stack_file, resolve_stack_arg
    from stacks.outputs import stack_outputs

    try:
        name, path = resolve_stack_arg(stack)
        return stack_outputs(load_stack_file(path, name))
    except SpecErrors as exc:
        raise BadInput(f"--stack {stack}: {exc}", "run `python -m stacks check` and fix the stack") from None


def read_outputs_file(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BadInput(f"--outputs {path}: no such file",
                       "save the outputs with `pulumi stack output --json -s STACK > FILE.json`") from None
    except ValueError as exc:
        raise BadInput(f"--outputs {path}: not valid JSON ({exc})",
                       "pass the output of `pulumi stack output --json`") from None
    if not isinstance(data, dict):
        raise BadInput(f"--outputs {path}: expected a JSON object of stack outputs", "see docs/stack-outputs.md")
    return data


def pulumi_outputs(stack: str, show_secrets: bool = False, key: str | None = None) -> Any:
    cmd = ["pulumi", "stack", "output", "--json", "--stack", stack]
    if key:
        cmd.insert(3, key)
    if show_secrets:
        cmd.append("--show-secrets")
    try:
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        raise BadInput("the pulumi CLI is not installed, so the stack outputs cannot be read",
                       "pass --outputs FILE.json (saved with `pulumi stack output --json`), or "
                       "--endpoint URL --dialect D --model M, or --target sim") from None
    if proc.returncode != 0:
        raise BadInput(f"`{shlex.join(cmd[:-1] if show_secrets else cmd)}` failed: {proc.stderr.strip()[:500]}",
                       "check the stack name (`pulumi stack ls`) and that `pulumi up` has run")
    return json.loads(proc.stdout)


def _check_outputs(outputs: dict[str, Any], where: str) -> None:
    missing = [k for k in ("dialect", "servedModel") if not outputs.get(k)]
    if missing:
        raise BadInput(f"{where}: the stack outputs lack {', '.join(missing)}", "see docs/stack-outputs.md")
    if not outputs.get("externalEndpoint") and not outputs.get("localUrl"):
        raise BadInput(f"{where}: the stack outputs have neither externalEndpoint nor localUrl",
                       "see docs/stack-outputs.md")
    if outputs["dialect"] not in DIALECTS:
        raise BadInput(f"{where}: dialect {outputs['dialect']!r} is not one this tool speaks",
                       f"use one of {', '.join(DIALECTS)}")


def _port_forward_local(command: str | None) -> int | None:
    """``kubectl port-forward ... svc/x 9100:9100`` -> 9100 (the local port)."""
    if not command:
        return None
    last = command.split()[-1]
    local = last.split(":")[0]
    return int(local) if local.isdigit() else None


def metrics_url_from_outputs(outputs: dict[str, Any], base_url: str) -> str | None:
    """The metrics URL reachable from here: same host as the API, the metrics path and port."""
    in_cluster = outputs.get("metricsUrl")
    if not in_cluster:
        return None
    path = urlsplit(in_cluster).path or "/"
    base = urlsplit(base_url)
    port = _port_forward_local(outputs.get("metricsPortForward")) or base.port
    return urlunsplit((base.scheme, f"{base.hostname}:{port}", path, "", ""))


def auth_headers(api_key: str | None) -> dict[str, str]:
    """The key as every server kind here takes it (behind an authenticating proxy, on every path)."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def check_reachable(target: Target, timeout: float = 5.0, hint: str = "") -> None:
    """Exit-3 error unless the endpoint answers its health path with 200."""
    url = target.base_url.rstrip("/") + target.health_path
    try:
        resp = httpx.get(url, timeout=timeout, trust_env=False, headers=auth_headers(target.api_key))
    except httpx.HTTPError as exc:
        raise Unreachable(f"the endpoint does not answer: GET {url} -> {type(exc).__name__}: {exc}",
                          hint or "check the URL and that the server is running") from None
    if resp.status_code in (401, 403):
        what = "a wrong API key" if target.api_key else "no API key"
        raise Unreachable(f"the endpoint refused {what}: GET {url} -> HTTP {resp.status_code}",
                          "set LOADTEST_API_KEY to the stack's key (`pulumi stack output --show-secrets apiKey`)")
    if resp.status_code != 200:
        raise Unreachable(f"the endpoint answers but is not ready: GET {url} -> HTTP {resp.status_code}",
                          hint or "wait until the server has loaded the model, then retry")


def gke_target(stack: str, outputs_file: str | None, metrics_url: str | None, in_cluster: bool = False) -> Target:
    """The deployed endpoint from the stack outputs: the external address, else the port-forward's
    local URL; ``in_cluster`` (a pod in the cluster): the Service's cluster DNS name."""
    outputs = read_outputs_file(outputs_file) if outputs_file else pulumi_outputs(stack)
    where = f"--outputs {outputs_file}" if outputs_file else f"stack {stack}"
    _check_outputs(outputs, where)
    name = Path(stack).name.removeprefix("Pulumi.").removesuffix(".yaml")
    if outputs.get("stack") and outputs["stack"] != name:
        raise BadInput(f"--stack {stack}: {where} belongs to stack {outputs['stack']!r}, not {name!r}",
                       f"pass --stack {outputs['stack']}, or the outputs of {name} "
                       f"(`pulumi stack output --json -s {name}`)")
    api_key = None
    if "apiKey" in outputs:
        value = outputs["apiKey"]
        if isinstance(value, str) and value and value != "[secret]":
            api_key = value
        elif not outputs_file:
            api_key = pulumi_outputs(stack, show_secrets=True, key="apiKey")
    api_key = os.environ.get("LOADTEST_API_KEY") or api_key
    external = outputs.get("endpoint") if in_cluster else outputs.get("externalEndpoint")
    base_url = external or outputs["localUrl"]
    if in_cluster and not metrics_url:
        metrics_url = outputs.get("metricsUrl")
    public = {k: v for k, v in outputs.items() if k not in ("apiKey", "kubeconfig")}
    target = Target("gke", base_url, outputs["dialect"], outputs["servedModel"],
                    outputs.get("healthPath") or DIALECTS[outputs["dialect"]].health_path,
                    metrics_url or metrics_url_from_outputs(outputs, base_url), public, api_key)
    hint = ""
    if not external:
        forward = outputs.get("portForward", "kubectl port-forward ...")
        hint = (f"the endpoint is in-cluster only (exposure: {outputs.get('exposure', 'cluster')}); make it "
                f"reachable at {outputs['localUrl']} with:\n      {forward}"
                "\n    then run this command again (or set exposure to internal/external and `pulumi up`)")
    check_reachable(target, hint=hint)
    return target


def url_target(stack: str, endpoint: str, dialect: str | None, model: str | None, metrics_url: str | None) -> Target:
    if not dialect or not model:
        raise BadInput("--endpoint needs --dialect and --model", "e.g. --endpoint http://127.0.0.1:8000 "
                       "--dialect openai --model meta-llama/Llama-2-7b-hf")
    if dialect not in DIALECTS:
        raise BadInput(f'--dialect: unknown dialect "{dialect}"', f"use one of: {', '.join(DIALECTS)}")
    if not urlsplit(endpoint).scheme.startswith("http") or not urlsplit(endpoint).hostname:
        raise BadInput(f"--endpoint {endpoint!r} is not an http(s) URL", "e.g. --endpoint http://127.0.0.1:8000")
    outputs = spec_outputs(stack)
    d = DIALECTS[dialect](model)
    target = Target("url", endpoint.rstrip("/"), dialect, model, d.health_path,
                    metrics_url or d.default_metrics_url(endpoint), outputs,
                    os.environ.get("LOADTEST_API_KEY"))
    check_reachable(target)
    return target


def sim_target(stack: str, metrics_url: str | None, startup_timeout: float = 60.0) -> Target:
    """Start ``python -m loadtest.simulator serve`` for the stack on a free port; wait for health.

    Servers whose metrics live on their own port (Triton, JetStream) get a second free port; the
    simulator confirms both on stdout (``listening: URL`` / ``metrics: URL``), read by a thread so
    the pipe never fills.
    """
    outputs = require_spec_outputs(stack)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "loadtest.simulator", "serve", "--stack", stack, "--host", "127.0.0.1",
           "--port", str(port)]
    separate_metrics = bool(outputs.get("metricsPortForward"))
    metrics_path = urlsplit(outputs.get("metricsUrl") or "/metrics").path or "/metrics"
    default_metrics = base_url + metrics_path
    if separate_metrics:
        mport = free_port()
        cmd += ["--metrics-port", str(mport)]
        default_metrics = f"http://127.0.0.1:{mport}{metrics_path}"
    log = tempfile.TemporaryFile()  # noqa: SIM115 - the simulator's stderr, read only if it fails to start
    env = dict(os.environ)
    api_key = None
    if (outputs.get("spec") or {}).get("apiKeyRequired"):
        # a fresh key per run, handed over in the environment (never argv): the simulated server
        # enforces it as the real one would, and the load tester sends it
        api_key = os.environ.get("LOADTEST_API_KEY") or secrets.token_urlsafe(24)
        env["SIMULATOR_API_KEY"] = api_key
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True).start()
    outputs = dict(outputs, localUrl=base_url, endpoint=base_url, externalEndpoint=None)
    health = outputs.get("healthPath") or DIALECTS[outputs["dialect"]].health_path
    target = Target("sim", base_url, outputs["dialect"], outputs["servedModel"], health,
                    metrics_url or default_metrics, outputs, api_key, proc)
    if target.autoscaled:  # the simulated endpoint serves its emulated Deployment where the Kubernetes API would
        target.kube_api = base_url
    deadline = time.monotonic() + startup_timeout
    while True:
        if proc.poll() is not None:
            log.seek(0)
            err = log.read().decode("utf-8", "replace")[-1500:]
            raise Unreachable(f"the simulated endpoint exited with code {proc.returncode} before answering:\n{err}",
                              f"run `{shlex.join(cmd[1:])}` to see why")
        try:
            if httpx.get(base_url + health, timeout=1.0, trust_env=False,
                         headers=auth_headers(api_key)).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            target.close()
            raise Unreachable(f"the simulated endpoint did not answer {health} within {startup_timeout:g} s",
                              f"run `{shlex.join(cmd[1:])}` to see why")
        time.sleep(0.1)
    announced = [line.split(" ", 1)[1].strip() for line in list(lines) if line.startswith("metrics: ")]
    if announced and not metrics_url:
        target.metrics_url = announced[-1]
    return target
