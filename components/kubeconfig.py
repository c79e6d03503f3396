"""Kubeconfig for the cluster and the Kubernetes provider built from it.

The credential is the ``gke-gcloud-auth-plugin`` exec plugin (what ``gcloud container clusters
get-credentials`` writes): no token is stored, each kubectl / provider call gets a fresh one from
the caller's gcloud login. The kubeconfig is still exported only as a secret (it names the endpoint
and CA). The provider depends on the node pools, so no Kubernetes object is applied before there
are nodes to run it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s
import yaml

AUTH_PLUGIN = "gke-gcloud-auth-plugin"


def kubeconfig_yaml(name: str, endpoint: str, ca_certificate: str) -> str:
    entry = f"gke-llm-bench-{name}"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": entry, "cluster": {"server": f"https://{endpoint}",
                                                 "certificate-authority-data": ca_certificate}}],
        "contexts": [{"name": entry, "context": {"cluster": entry, "user": entry}}],
        "current-context": entry,
        "users": [{"name": entry, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": AUTH_PLUGIN,
            "installHint": "Install gke-gcloud-auth-plugin: gcloud components install gke-gcloud-auth-plugin",
            "provideClusterInfo": True,
        }}}],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def kubeconfig(name: pulumi.Input[str], endpoint: pulumi.Input[str], ca: pulumi.Input[str]) -> pulumi.Output[str]:
    """The kubeconfig, always as a Pulumi secret."""
    return pulumi.Output.secret(pulumi.Output.all(name, endpoint, ca).apply(lambda a: kubeconfig_yaml(*a)))


def provider(name: str, config: pulumi.Output[str], depends_on: Sequence[pulumi.Resource]) -> k8s.Provider:
    return k8s.Provider(name, kubeconfig=config, opts=pulumi.ResourceOptions(depends_on=list(depends_on)))
