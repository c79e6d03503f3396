"""One small module per server kind: each turns ``ServerArgs`` into its pod's server-specific parts."""

from . import jetstream, tgi, triton_trtllm, vllm
from .base import PrepJob, SecretRefs, ServerArgs, ServerWorkload

#: vLLM's TPU image takes exactly the GPU image's `vllm serve` flags
TRANSLATORS = {"vllm": vllm, "vllm-tpu": vllm, "tgi": tgi, "triton-trtllm": triton_trtllm, "jetstream": jetstream}

__all__ = ["TRANSLATORS", "PrepJob", "SecretRefs", "ServerArgs", "ServerWorkload", "jetstream", "tgi",
           "triton_trtllm", "vllm"]
