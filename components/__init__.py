"""Pulumi ComponentResources for one serving stack: cluster -> GPU/TPU node pool -> model server.

Each component takes an args dataclass derived from the ``StackSpec`` and only translates it into
resources (type tokens ``gke-llm-bench:<module>:<Name>``); every decision is made in ``stacks.spec``.
Importing this package imports Pulumi; ``stacks`` never imports it.
"""

from .cluster import Cluster, ClusterArgs
from .gpu_node_pool import GpuNodePool, GpuNodePoolArgs
from .kubeconfig import kubeconfig, provider
from .model_server import ModelServer, ModelServerArgs
from .tpu_node_pool import TpuNodePool, TpuNodePoolArgs

__all__ = [
    "Cluster", "ClusterArgs", "GpuNodePool", "GpuNodePoolArgs", "ModelServer", "ModelServerArgs",
    "TpuNodePool", "TpuNodePoolArgs", "kubeconfig", "provider",
]
