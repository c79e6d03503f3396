"""Weight precisions and KV-cache dtypes: bytes per element and the dtype compute runs in.

The guide's rule 1 (quantize) and rule 2 (params x bytes) both reduce to this table.
awq and gptq are 4-bit weight-only methods: weights are stored in 4 bits (0.5 byte) and
de-quantized to 16-bit for the matmul, so compute runs at the 16-bit peak.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Precision:
    name: str
    bytes_per_param: float
    compute_dtype: str  # which tensor-core peak applies (catalog tflops key)
    bits: int
    weight_only: bool  # True: activations stay 16-bit (int4/int8 weight-only kernels)
    description: str


PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("bf16", 2, "bf16", 16, False, "bfloat16 weights and activations"),
        Precision("fp16", 2, "fp16", 16, False, "float16 weights and activations"),
        Precision("fp8", 1, "fp8", 8, False, "FP8 (E4M3) weights and activations on FP8 tensor cores"),
        Precision("int8", 1, "bf16", 8, True, "8-bit integer weights (weight-only), 16-bit activations"),
        Precision("awq", 0.5, "bf16", 4, True, "AWQ 4-bit weights from a pre-quantized checkpoint"),
        Precision("gptq", 0.5, "bf16", 4, True, "GPTQ 4-bit weights from a pre-quantized checkpoint"),
    )
}

# KV-cache element sizes; "auto" means the activation dtype (2 bytes for every precision above).
KV_CACHE_BYTES: dict[str, float] = {"auto": 2, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1}
