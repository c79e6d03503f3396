"""Weight precisions and KV-cache dtypes: bytes per element and the dtype compute runs in.

The guide's rule 1 (quantize) and rule 2 (params x bytes) both reduce to this table.
awq and gptq are 4-bit weight-only methods: weights are stored in 4 bits (0.5 byte) and
de-quantized to 16-bit for the matmul, so compute runs at the 16-bit peak.

The two 4-bit floating-point formats carry their block scales in the byte count:
- mxfp4 (OCP microscaling): E2M1 values with one E8M0 scale per 32 → 4.25 bits per weight.
  It is gpt-oss's native format; those checkpoints quantize the MoE experts only and keep attention,
  router, embeddings and head in bf16 (``quantization_config.modules_to_not_convert``), so a model at
  mxfp4 is sized experts x 4.25 bits + the rest x 16 bits (``experts_only``).
- nvfp4 (NVIDIA): E2M1 values with one FP8 (E4M3) scale per 16, plus a per-tensor fp32 scale →
  4.5 bits per weight, every linear layer.

Where the tensor cores run the format's dtype (the chip's ``tflops`` has the key: fp8 on
Ada/Hopper/Blackwell, fp4 on Blackwell) compute runs at that peak; elsewhere the server dequantizes
to 16 bits (Marlin kernels) and compute runs at the bf16 peak (``Chip.peak_tflops`` falls back).
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
    experts_only: bool = False  # True: only a mixture of experts' expert weights are in this format

    @property
    def pre_quantized(self) -> bool:
        """Served from a checkpoint stored in this format (the server cannot quantize to it at load
        time), so the checkpoint must say so or be named (``model.hfId``)."""
        return self.name in PRE_QUANTIZED


PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("bf16", 2, "bf16", 16, False, "bfloat16 weights and activations"),
        Precision("fp16", 2, "fp16", 16, False, "float16 weights and activations"),
        Precision("fp8", 1, "fp8", 8, False, "FP8 (E4M3) weights and activations on FP8 tensor cores"),
        Precision("int8", 1, "bf16", 8, True, "8-bit integer weights (weight-only), 16-bit activations"),
        Precision("awq", 0.5, "bf16", 4, True, "AWQ 4-bit weights from a pre-quantized checkpoint"),
        Precision("gptq", 0.5, "bf16", 4, True, "GPTQ 4-bit weights from a pre-quantized checkpoint"),
        Precision("mxfp4", 4.25 / 8, "fp4", 4, False,
                  "MXFP4 (E2M1, E8M0 scale per 32) MoE experts from a pre-quantized checkpoint (gpt-oss)",
                  experts_only=True),
        Precision("nvfp4", 4.5 / 8, "fp4", 4, False,
                  "NVFP4 (E2M1, FP8 scale per 16) weights from a pre-quantized checkpoint"),
    )
}

#: precisions served only from a checkpoint already stored in them
PRE_QUANTIZED = frozenset({"awq", "gptq", "mxfp4", "nvfp4"})

# KV-cache element sizes; "auto" means the activation dtype (2 bytes for every precision above).
KV_CACHE_BYTES: dict[str, float] = {"auto": 2, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1}
