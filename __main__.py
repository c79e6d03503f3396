"""The Pulumi program: config -> StackSpec -> cluster -> accelerator pool -> model server -> outputs.

Every decision is in ``stacks`` (the spec); the components translate it. Under the offline plan
(``python -m offline plan``) the same program runs with mocked resources and placeholder secrets.
"""

import os

import pulumi

import stacks
from components import (
    AcceleratorNodePool,
    Cluster,
    ClusterArgs,
    ModelServer,
    ModelServerArgs,
    NodePoolArgs,
    kubeconfig,
    provider,
)
from components.config_source import flat_config
from stacks.config import PROJECT
from stacks.outputs import stack_outputs

OFFLINE_PLAN = os.environ.get("GKE_LLM_BENCH_OFFLINE_PLAN") == "1"

try:
    spec = stacks.spec_from_config(flat_config(), pulumi.get_stack(), require_secrets=not OFFLINE_PLAN)
except stacks.SpecErrors as exc:
    pulumi.log.error(exc.render())
    raise pulumi.RunError("the stack configuration is invalid (every problem is listed above)") from None

config = pulumi.Config(PROJECT)


def secret(key: str | None) -> pulumi.Output[str] | None:
    return config.require_secret(key) if key else None


cluster = Cluster("cluster", ClusterArgs.from_spec(spec))
pool = AcceleratorNodePool("accelerators", NodePoolArgs.from_spec(spec, cluster.name, cluster.location,
                                                                 cluster.node_service_account.email),
                           opts=pulumi.ResourceOptions(depends_on=cluster.ready))
kube = kubeconfig(cluster.name, cluster.endpoint, cluster.ca_certificate)
k8s_provider = provider("gke", kube, depends_on=[pool, *cluster.ready])
server = ModelServer(
    "server",
    ModelServerArgs.from_spec(spec, hf_token=secret(spec.hf_token_key), api_key=secret(spec.api_key_key),
                              kaggle_json=secret(spec.kaggle_key_key)),
    opts=pulumi.ResourceOptions(providers={"kubernetes": k8s_provider}),
)

for key, value in stack_outputs(spec).items():
    pulumi.export(key, value)
port = spec.service_port
pulumi.export("externalEndpoint", server.external_address.apply(lambda a: f"http://{a}:{port}" if a else None))
if spec.api_key_key:
    pulumi.export("apiKey", pulumi.Output.secret(secret(spec.api_key_key)))
pulumi.export("kubeconfig", kube)
