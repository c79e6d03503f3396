"""Reading the Kubernetes API: a pod's own Job (its start time) and the server's Deployment (its replicas).

Where the API is:
- inside a pod: ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`` with the pod's
  service-account token and the cluster CA (mounted by Kubernetes);
- from a laptop: ``kubectl proxy`` (``--kube-api http://127.0.0.1:8001``), which authenticates with
  the user's own kubeconfig, so no credential passes through the load tester;
- the simulated endpoint serves the Deployment path itself, as the HPA it emulates scales it.
``LOADGEN_KUBE_API`` overrides the in-cluster address (tests).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
API_ENV = "LOADGEN_KUBE_API"


@dataclass(frozen=True)
class KubeApi:
    base: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    verify: bool | str = True

    @classmethod
    def locate(cls, explicit: str | None = None) -> KubeApi | None:
        """``explicit`` (a URL), else ``LOADGEN_KUBE_API``, else the in-cluster API; None outside a cluster."""
        base = explicit or os.environ.get(API_ENV)
        if base:
            return cls(base.rstrip("/"))
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        token = SERVICE_ACCOUNT_DIR / "token"
        if not host or not token.exists():
            return None
        return cls(f"https://{host}:{port}", {"Authorization": f"Bearer {token.read_text().strip()}"},
                   str(SERVICE_ACCOUNT_DIR / "ca.crt"))

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=self.headers, verify=self.verify, timeout=10.0,
                            trust_env=False)

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, headers=self.headers, verify=self.verify, timeout=5.0,
                                 trust_env=False)


def deployment_path(namespace: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


def replica_samples(deployment: dict[str, Any]) -> dict[str, float]:
    """A Deployment object as kube-state-metrics names its replica counts (the field's convention)."""
    meta, spec, status = (deployment.get(k) or {} for k in ("metadata", "spec", "status"))
    labels = f'{{deployment="{meta.get("name", "")}",namespace="{meta.get("namespace", "")}"}}'
    return {f"kube_deployment_spec_replicas{labels}": float(spec.get("replicas") or 0),
            f"kube_deployment_status_replicas{labels}": float(status.get("replicas") or 0),
            f"kube_deployment_status_replicas_available{labels}": float(status.get("availableReplicas") or 0)}
