"""The Pulumi program: config -> spec -> cluster -> accelerator pool -> model server (-> load generator) -> outputs.

Every decision is in ``stacks`` (the spec); the components translate it. A stack file declares one
of two things (``gke-llm-bench:role``):
- ``serving`` (the default): a model server on its own accelerator pool, in its own cluster
  (isolated) or in a cluster stack's cluster (shared: ``cluster.fromStack``, a StackReference);
- ``cluster``: only a cluster, for serving stacks to join.
Under the offline plan (``python -m offline plan``) the same program runs with mocked resources and
placeholder secrets.
"""

import os

import pulumi

import stacks
from components import (
    AcceleratorNodePool,
    Autoscaler,
    AutoscalerArgs,
    Cluster,
    ClusterArgs,
    ClusterReference,
    LoadGenerator,
    LoadGeneratorArgs,
    ModelServer,
    ModelServerArgs,
    NodePoolArgs,
    kubeconfig,
    provider,
)
from components.config_source import flat_config
from stacks.cluster_spec import ClusterSpec, cluster_outputs
from stacks.config import PROJECT
from stacks.loader import STACKS_DIR
from stacks.outputs import service_name, stack_outputs
from stacks.spec import StackSpec

OFFLINE_PLAN = os.environ.get("GKE_LLM_BENCH_OFFLINE_PLAN") == "1"
#: the stack file, for paths in it (model.configFile) and the cluster stack beside it (cluster.fromStack):
#: the offline plan names it; under the Pulumi CLI it is stacks/Pulumi.<stack>.yaml (stackConfigDir)
STACK_FILE = os.environ.get("GKE_LLM_BENCH_STACK_FILE") or str(STACKS_DIR / f"Pulumi.{pulumi.get_stack()}.yaml")
config = pulumi.Config(PROJECT)


def secret(key: str | None) -> pulumi.Output[str] | None:
    return config.require_secret(key) if key else None


def cluster_stack(spec: ClusterSpec) -> None:
    """A cluster for serving stacks to join: its outputs are what their StackReference reads."""
    cluster = Cluster("cluster", ClusterArgs.from_spec(spec))
    for key, value in cluster_outputs(spec).items():
        pulumi.export(key, value)
    pulumi.export("endpoint", cluster.endpoint)
    pulumi.export("caCertificate", cluster.ca_certificate)
    pulumi.export("nodeServiceAccount", cluster.node_service_account_email)
    pulumi.export("kubeconfig", kubeconfig(cluster.name, cluster.endpoint, cluster.ca_certificate))


def serving_stack(spec: StackSpec) -> None:
    cluster = (ClusterReference("cluster", spec) if spec.shared_cluster
               else Cluster("cluster", ClusterArgs.from_spec(spec.cluster_spec)))
    pool = AcceleratorNodePool("accelerators", NodePoolArgs.from_spec(spec, cluster.name, cluster.location,
                                                                     cluster.node_service_account_email),
                               opts=pulumi.ResourceOptions(depends_on=cluster.ready))
    kube = kubeconfig(cluster.name, cluster.endpoint, cluster.ca_certificate)
    k8s_provider = provider("gke", kube, depends_on=[pool, *cluster.ready])
    server = ModelServer(
        "server",
        ModelServerArgs.from_spec(spec, hf_token=secret(spec.hf_token_key), api_key=secret(spec.api_key_key),
                                  kaggle_json=secret(spec.kaggle_key_key)),
        opts=pulumi.ResourceOptions(providers={"kubernetes": k8s_provider}),
    )
    if spec.autoscale is not None:  # a HorizontalPodAutoscaler on a server metric
        Autoscaler("autoscaler", AutoscalerArgs.from_spec(spec, service_name(spec)), depends_on=[server],
                   opts=pulumi.ResourceOptions(providers={"kubernetes": k8s_provider}))
    if spec.loadgen is not None:  # in-cluster load generation, next to the server it measures
        LoadGenerator("loadgen", LoadGeneratorArgs.from_spec(spec, cluster.name, cluster.location,
                                                             cluster.node_service_account_email, server.api_key_ref),
                      depends_on=[server], opts=pulumi.ResourceOptions(providers={"kubernetes": k8s_provider}))
    for key, value in stack_outputs(spec).items():
        pulumi.export(key, value)
    port = spec.service_port
    pulumi.export("externalEndpoint", server.external_address.apply(lambda a: f"http://{a}:{port}" if a else None))
    if spec.api_key_key:
        pulumi.export("apiKey", pulumi.Output.secret(secret(spec.api_key_key)))
    pulumi.export("kubeconfig", kube)


try:
    spec = stacks.any_spec_from_config(flat_config(), pulumi.get_stack(), source=STACK_FILE,
                                       require_secrets=not OFFLINE_PLAN)
except stacks.SpecErrors as exc:
    pulumi.log.error(exc.render())
    raise pulumi.RunError("the stack configuration is invalid (every problem is listed above)") from None

if isinstance(spec, ClusterSpec):
    cluster_stack(spec)
else:
    serving_stack(spec)
