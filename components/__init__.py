"""Pulumi ComponentResources for one serving stack: cluster -> accelerator node pool -> model server.

Each component takes an args dataclass derived from the ``StackSpec`` and only translates it into
resources (type tokens ``gke-llm-bench:<module>:<Name>``); every decision is made in ``stacks.spec``.
Importing this package imports Pulumi; ``stacks`` never imports it.
"""

from .autoscaler import Autoscaler, AutoscalerArgs
from .cluster import Cluster, ClusterArgs
from .cluster_reference import ClusterReference
from .kubeconfig import kubeconfig, provider
from .load_generator import LoadGenerator, LoadGeneratorArgs
from .model_server import ModelServer, ModelServerArgs
from .node_pool import AcceleratorNodePool, NodePoolArgs

__all__ = [
    "AcceleratorNodePool", "Autoscaler", "AutoscalerArgs", "Cluster", "ClusterArgs", "ClusterReference",
    "LoadGenerator", "LoadGeneratorArgs", "ModelServer", "ModelServerArgs", "NodePoolArgs", "kubeconfig", "provider",
]
