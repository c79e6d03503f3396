"""The stack outputs every downstream tool reads (docs/stack-outputs.md), built from the spec alone.

``__main__.py`` exports this dictionary (plus the values that only exist after deployment: the
load-balancer address, the API key and kubeconfig as secrets); the offline plan prints it; the load
tester and the simulated endpoint consume it. One function, so the three never disagree.
"""

from __future__ import annotations

from typing import Any

from .spec import StackSpec


def service_name(spec: StackSpec) -> str:
    """Kubernetes name of the model server's Deployment and Service."""
    return f"{spec.server.name}-{spec.model.alias}".replace(".", "-").replace("_", "-")[:63].rstrip("-")


def stack_outputs(spec: StackSpec) -> dict[str, Any]:
    """Non-secret outputs known before deployment (``externalEndpoint`` is filled in by Pulumi)."""
    svc, ns, port = service_name(spec), spec.namespace, spec.service_port
    server = spec.server
    metrics_port_differs = server.metrics_port != server.http_port
    metrics_local = 9100 if server.metrics_port == 9100 else server.metrics_port
    return {
        "stack": spec.name,
        "endpoint": f"http://{svc}.{ns}.svc.cluster.local:{port}",
        "namespace": ns,
        "deployment": svc,  # the server's Deployment (and Service): what an autoscaler scales
        "externalEndpoint": None,
        "exposure": spec.exposure,
        "portForward": f"kubectl port-forward -n {ns} svc/{svc} 8000:{port}",
        "localUrl": "http://127.0.0.1:8000",
        "dialect": server.dialect,
        "servedModel": spec.served_name,
        "metricsUrl": f"http://{svc}.{ns}.svc.cluster.local:{server.metrics_port if metrics_port_differs else port}"
        f"{server.metrics_path}",
        "metricsPortForward": (
            f"kubectl port-forward -n {ns} svc/{svc} {metrics_local}:{server.metrics_port}"
            if metrics_port_differs
            else None
        ),
        "healthPath": server.health_path,
        "accelerator": spec.accelerator,
        "machineType": spec.machine.name,
        "nodeCount": spec.node_count,
        "tensorParallel": spec.tensor_parallel,
        "precision": spec.precision.name,
        "costPerHour": round(spec.usd_per_hour, 4),
        "costPerHourAllIn": round(spec.usd_per_hour_all_in, 4),
        "spec": spec.summary(),
    }
