"""Typed view of the catalog data files in ``stacks/catalog/``.

The numbers live in YAML next to their sources; this module only gives them types, so a
wrong or missing field fails loudly at load time instead of as a ``KeyError`` deep inside sizing.
The catalog is read once per process (``load_catalog`` is cached): every consumer, from the
CLI to the simulator, sees the same objects.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CATALOG_DIR = Path(__file__).parent / "catalog"


@dataclass(frozen=True)
class Chip:
    """One accelerator chip (a GPU, or a TPU chip), as the performance and sizing rules see it."""

    key: str  # GKE accelerator string, e.g. "nvidia-l4" or "tpu-v5-lite-podslice"
    name: str
    memory_gb: float  # marketed memory, decimal GB: what the guide's 80 % rule is written against
    usable_mib: int  # what the runtime can allocate (nvidia-smi total)
    bandwidth_gbps: float
    tflops: dict[str, float]  # dense, per precision family (bf16, fp16, fp8, int8)
    fp8: bool = False
    bf16: bool = True
    compute_capability: str | None = None
    kind: str = "gpu"  # "gpu" | "tpu"
    source: str = ""

    @property
    def usable_bytes(self) -> int:
        return self.usable_mib * 2**20

    def peak_tflops(self, compute_dtype: str) -> float:
        """Dense peak for the dtype the tensor cores run in; falls back to 16-bit (a format the
        tensor cores lack is dequantized to 16 bits by the server's weight-only kernels)."""
        return self.tflops.get(compute_dtype) or self.tflops.get("bf16") or self.tflops["fp16"]

    def capability_at_least(self, minimum: str) -> bool:
        """CUDA compute capability >= ``minimum`` ("8.9"); a chip without one (a TPU) never is."""
        if self.compute_capability is None:
            return False
        return _capability(self.compute_capability) >= _capability(minimum)


def _capability(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@dataclass(frozen=True)
class MachineType:
    """A GCE machine shape: the chip it carries, how many, and what it costs."""

    name: str
    chip: Chip
    count: int  # GPUs per node, or TPU chips per host
    vcpu: int
    memory_gb: float
    on_demand_usd_h: float
    spot_usd_h: float | None  # None: no sourced spot price (set `gke-llm-bench:cost.spotPerHour`)
    local_ssd: int = 0
    on_demand: bool = True  # False: GCE sells this shape only as spot / flex-start
    boot_disk: str | None = "pd-balanced"  # node boot disk type; None: GKE's default for the shape
    topology: str | None = None  # TPU slice topology, e.g. "2x2"
    source: str = ""

    @property
    def kind(self) -> str:
        return self.chip.kind


@dataclass(frozen=True)
class ModelArch:
    """Architecture facts the sizing and performance model need (from config.json)."""

    alias: str
    hf_id: str
    family: str
    params: int
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    max_context: int
    gated: bool = False
    encoder_decoder: bool = False
    decoder_layers: int | None = None
    active_params: int | None = None  # mixture-of-experts: parameters touched per token
    experts: int | None = None  # mixture-of-experts: experts per layer ...
    experts_per_token: int | None = None  # ... and how many each token is routed to
    quantized: dict[str, str] = field(default_factory=dict)
    sliding_window: int | None = None  # tokens a sliding-window attention layer attends to ...
    sliding_layers: int = 0  # ... and how many of the KV layers are such layers
    notes: str = ""

    @property
    def expert_params(self) -> int:
        """Parameters in the experts, every layer's (0 for a dense model): what a step reads only
        for the experts its tokens are routed to. From params = fixed + E x e and
        active = fixed + k x e: e = (params - active) / (E - k)."""
        e, k = self.experts, self.experts_per_token
        if not (e and k and self.active_params) or e == k:
            return 0
        return round((self.params - self.active_params) * e / (e - k))

    def experts_touched(self, tokens: int) -> float:
        """The share of the experts at least one of ``tokens`` routed tokens picks (1 for a dense
        model). With k of E experts per token, chosen evenly, an expert is missed by all of them
        with probability (1 - k/E)^tokens."""
        if not self.expert_params or not self.experts or not self.experts_per_token:
            return 1.0
        return 1.0 - (1.0 - self.experts_per_token / self.experts) ** max(tokens, 1)

    @property
    def native_formats(self) -> tuple[str, ...]:
        """Pre-quantized formats the model's own repository is published in (gpt-oss: mxfp4). Such a
        repository holds no 16-bit weights: every other precision needs a checkpoint of its own."""
        return tuple(sorted(p for p, repo in self.quantized.items() if repo == self.hf_id))

    def has_weights_for(self, precision: str, pre_quantized: bool) -> bool:
        """Whether a known checkpoint serves ``precision``: one stored in it, or 16-bit weights the
        server quantizes at load time."""
        native = self.native_formats
        if native:
            return precision in native
        return precision in self.quantized if pre_quantized else True

    @property
    def kv_layers(self) -> int:
        """Layers that keep a KV cache (the decoder's, for an encoder-decoder)."""
        return self.decoder_layers or self.layers

    def kv_bytes_per_token(self, bytes_per_element: float) -> float:
        """2 (K and V) x layers x kv_heads x head_dim x bytes: the cache one token occupies."""
        return 2 * self.kv_layers * self.kv_heads * self.head_dim * bytes_per_element


@dataclass(frozen=True)
class ServerKind:
    """A model server: its image, real ports and paths, and what it can serve."""

    name: str
    accelerator: str  # "gpu" | "tpu"
    image: str
    http_port: int
    health_path: str
    metrics_port: int
    metrics_path: str
    dialect: str
    precisions: tuple[str, ...]
    kv_cache_dtypes: tuple[str, ...]
    families: tuple[str, ...]
    max_batch_flag: str
    grpc_port: int | None = None
    lora: bool = False  # serves LoRA adapters per request (stacks/lora.py)
    # precision -> the lowest CUDA compute capability the server's kernels for it need
    min_compute_capability: dict[str, str] = field(default_factory=dict)
    # the newest GPU generation the pinned image's kernels are known to run on (None: no limit)
    max_compute_capability: str | None = None
    extra_images: dict[str, str] = field(default_factory=dict)
    source: str = ""

    def too_new(self, chip: Chip) -> bool:
        """The pinned image is not known to run on the chip's GPU generation (newer than
        ``max_compute_capability``)."""
        newest = self.max_compute_capability
        return newest is not None and chip.capability_at_least(newest) and chip.compute_capability != newest

    def runs(self, precision: str, chip: Chip) -> bool:
        """The server x precision x GPU-generation rule: the image runs on the chip and has kernels
        for ``precision`` there (``min_compute_capability``). Where a TPU server is asked, True."""
        if chip.kind != "gpu":
            return True
        minimum = self.min_compute_capability.get(precision)
        return not self.too_new(chip) and (minimum is None or chip.capability_at_least(minimum))


@dataclass(frozen=True)
class Regions:
    """Google Cloud's regions, and the zones that offer an accelerator where a table was read
    (``catalog/regions.yaml``)."""

    names: tuple[str, ...] = ()
    accelerator_zones: dict[str, tuple[str, ...]] = field(default_factory=dict)
    accelerator_zones_regions: tuple[str, ...] = ()  # regions the accelerator tables cover
    source: str = ""
    accelerator_zones_source: str = ""


@dataclass(frozen=True)
class Catalog:
    chips: dict[str, Chip]
    machines: dict[str, MachineType]
    models: dict[str, ModelArch]
    servers: dict[str, ServerKind]
    cluster_fee_usd_h: float = 0.0  # GKE's management fee per cluster (cluster.yaml)
    system_machines: dict[str, float] = field(default_factory=dict)  # CPU system-pool machine → $/h per node
    cluster_price_source: str = ""
    regions: Regions = field(default_factory=Regions)

    def model_by_hf_id(self, hf_id: str) -> ModelArch | None:
        for model in self.models.values():
            if model.hf_id.lower() == hf_id.lower():
                return model
        return None

    def machines_for(self, chip_key: str) -> list[MachineType]:
        return sorted(
            (m for m in self.machines.values() if m.chip.key == chip_key),
            key=lambda m: (m.count, m.on_demand_usd_h),
        )


def _read(name: str) -> dict[str, Any]:
    data = yaml.safe_load((CATALOG_DIR / name).read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def _chip(key: str, raw: dict[str, Any], kind: str) -> Chip:
    fields = {k: raw[k] for k in raw if k in Chip.__dataclass_fields__ and k not in ("key", "kind")}
    return Chip(key=key, kind=kind, **fields)


@functools.cache
def load_catalog() -> Catalog:
    """Read and type every catalog file once."""
    chips = {key: _chip(key, raw, "gpu") for key, raw in _read("gpus.yaml").items()}
    machines: dict[str, MachineType] = {}
    for name, raw in _read("machines.yaml").items():
        machines[name] = MachineType(
            name=name,
            chip=chips[raw["gpu"]],
            count=raw["gpus"],
            vcpu=raw["vcpu"],
            memory_gb=raw["memory_gb"],
            on_demand_usd_h=raw["on_demand_usd_h"],
            spot_usd_h=raw.get("spot_usd_h"),
            local_ssd=raw.get("local_ssd", 0),
            on_demand=raw.get("on_demand", True),
            boot_disk=raw.get("boot_disk", "pd-balanced"),
            source=raw.get("source", ""),
        )
    for name, raw in _read("tpus.yaml").items():
        chip_raw = dict(raw["chip"])
        chip = _chip(chip_raw.pop("accelerator"), {**chip_raw, "bf16": True}, "tpu")
        chips.setdefault(chip.key, chip)
        machines[name] = MachineType(
            name=name,
            chip=chip,
            count=raw["chips"],
            vcpu=raw["vcpu"],
            memory_gb=raw["memory_gb"],
            on_demand_usd_h=raw["on_demand_usd_h"],
            spot_usd_h=raw["spot_usd_h"],
            topology=raw["topology"],
            source="cloud.google.com/tpu/pricing (v5e), GKE TPU docs",
        )
    models = {}
    for alias, raw in _read("models.yaml").items():
        models[alias] = ModelArch(alias=alias, **raw)
    servers = {}
    for name, raw in _read("servers.yaml").items():
        raw = dict(raw)
        extra = {k: raw.pop(k) for k in list(raw) if k.endswith("_image")}
        servers[name] = ServerKind(
            name=name,
            extra_images=extra,
            precisions=tuple(raw.pop("precisions")),
            kv_cache_dtypes=tuple(raw.pop("kv_cache_dtypes")),
            families=tuple(raw.pop("families")),
            min_compute_capability={k: str(v) for k, v in (raw.pop("min_compute_capability", None) or {}).items()},
            **raw,
        )
    cluster = _read("cluster.yaml")
    where = _read("regions.yaml")
    regions = Regions(names=tuple(where["regions"]),
                      accelerator_zones={k: tuple(v) for k, v in where["accelerator_zones"].items()},
                      accelerator_zones_regions=tuple(where["accelerator_zones_regions"]),
                      source=str(where["regions_source"]),
                      accelerator_zones_source=str(where["accelerator_zones_source"]))
    return Catalog(chips=chips, machines=machines, models=models, servers=servers, regions=regions,
                   cluster_fee_usd_h=float(cluster["management_fee_usd_h"]),
                   system_machines={k: float(v) for k, v in cluster["system_machines"].items()},
                   cluster_price_source=str(cluster["source"]))
