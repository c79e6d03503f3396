"""``resolve``: the raw ``StackConfig`` -> a ``StackSpec``, by the rules of each config section.

Catalog names become catalog objects, the machine type and GPU type are derived from each other,
tensor parallelism is chosen, the memory budget is sized, names are derived, and every cross-field
rule is checked. All problems are collected and raised together as ``SpecErrors``, each naming the
key as written (``config_key``) and the fix.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Collection
from dataclasses import replace

from .autoscale import resolve_autoscale
from .catalog import Catalog, Chip, MachineType, ModelArch, ServerKind, load_catalog
from .cluster_spec import ClusterSpec, zones_used
from .config import ClusterConfig, ClusterStackConfig, StackConfig
from .errors import SpecError, SpecErrors, did_you_mean, one_of
from .hf_config import HfArchitecture
from .loadgen import resolve_loadgen
from .location import location_errors
from .lora import lora_bytes, resolve_lora
from .names import CLUSTER_NAME, NAMESPACE, ResourceNames, cluster_name
from .precision import KV_CACHE_BYTES, PRECISIONS, Precision
from .secret_values import looks_like_secret
from .serving import MANAGED_FLAGS, MAXTEXT_RECIPES, SECRET_FLAGS, MaxTextModel, flag_name
from .sizing import Alternative, cheapest_fits, default_tp, fits, size, tp_divides, weight_bytes
from .spec import DEFAULT_BATCHED_TOKENS, DEFAULT_MAX_MODEL_LEN_CAP, StackSpec, config_key

#: (server kind, the model name it serves whatever the checkpoint)
TRITON_SERVED_NAME = ("triton-trtllm", "ensemble")
#: a StackReference name: ``<stack>``, ``<project>/<stack>`` or ``<organization>/<project>/<stack>``
STACK_REFERENCE = re.compile(r"^(?:[A-Za-z0-9_.-]+/){0,2}[A-Za-z0-9_.-]+$")


class _Resolver:
    """Collects errors while resolving; each step tolerates earlier failures (values may be None)."""

    def _maxtext(self, model: ModelArch | None, server: ServerKind | None) -> MaxTextModel | None:
        """JetStream serves only models its MaxText checkpoint converter has a recipe for."""
        if server is None or model is None or server.name != "jetstream":
            return None
        recipe = MAXTEXT_RECIPES.get(model.alias)
        if recipe is None:
            self.error(config_key("model.name"),
                       f"JetStream's MaxText checkpoint converter has no recipe for {model.alias}",
                       f"use one of: {', '.join(MAXTEXT_RECIPES)} with server.kind jetstream, or another server")
        return recipe

    def _extra_args(self, server: str | None) -> None:
        """``extraArgs`` add flags; they never carry a secret nor set a flag the spec already sets."""
        for i, arg in enumerate(self.c.server.extra_args):
            key = config_key(f"server.extraArgs[{i}]")
            if looks_like_secret(arg) or flag_name(arg).lower() in SECRET_FLAGS:
                self.error(key, "carries a credential (not shown)",
                           "remove it: secrets reach the server from Kubernetes Secrets (`secrets.*` names the "
                           "config keys); if it was a real credential, revoke it")
            elif server and flag_name(arg) in MANAGED_FLAGS.get(server, frozenset()):
                self.error(key, f"{flag_name(arg)} is set from the stack spec already",
                           "set it through its config key (see docs/config.md) instead of extraArgs")

    def _names(self, stack: str, accelerator_kind: str, joined: ClusterSpec | None) -> ResourceNames:
        """Names derived from the stack unless given; a given one is checked against the naming rules."""
        c = self.c
        cluster = c.cluster.existing.name if c.cluster.existing else c.cluster.name
        if c.cluster.from_stack:  # the cluster stack's cluster, as that stack names it
            cluster = joined.names.cluster if joined else cluster_name(c.cluster.from_stack.rsplit("/", 1)[-1])
        self.errors += _cluster_name_errors(c.cluster)
        if c.server.namespace and not NAMESPACE.match(c.server.namespace):
            self.error(config_key("server.namespace"), f'"{c.server.namespace}" is not a Kubernetes namespace name',
                       "at most 63 lowercase letters, digits and hyphens, starting and ending with a letter or "
                       "digit; or leave it out to derive one from the stack name")
        return ResourceNames.derive(stack, accelerator_kind, cluster, c.server.namespace, c.gcp.project)

    def _served_name(self, server: str, checkpoint: str) -> str:
        """The name clients address. Triton serves the TensorRT-LLM model repository's ``ensemble``:
        its ``/v2/models/<name>`` route cannot match a Hugging Face id with ``/`` in it."""
        given = self.c.model.served_name
        if server == TRITON_SERVED_NAME[0]:
            if given and given != TRITON_SERVED_NAME[1]:
                self.error(config_key("model.servedName"),
                           f'Triton serves the TensorRT-LLM repository\'s "ensemble" model, '
                           f'not "{given}"', "remove model.servedName (clients address `ensemble`)")
            return TRITON_SERVED_NAME[1]
        return given or checkpoint

    def __init__(self, config: StackConfig, catalog: Catalog):
        self.c = config
        self.cat = catalog
        self.weights_limit = config.sizing.weights_share_max  # the guide's 80 % unless the stack raises it
        self.errors: list[SpecError] = []
        self.warnings: list[str] = []

    def error(self, key: str, message: str, fix: str = "") -> None:
        self.errors.append(SpecError(key, message, fix))

    def _unknown(self, key: str, what: str, name: str, known: Collection[str], hint: str = "") -> None:
        """A name the catalog does not know: the closest match, and every name it does know."""
        self.error(config_key(key), f'unknown {what} "{name}"{did_you_mean(name, known)}', one_of(name, known) + hint)

    # -- model -----------------------------------------------------------------------------------
    def model(self, hf: HfArchitecture | None = None) -> ModelArch | None:
        m = self.c.model
        if m.name is None and m.hf_id is None:
            self.error(config_key("model"),
                       "names no model", "set `name` (a catalog alias) or `hfId` (+ `architecture` or `configFile`)")
            return None
        if m.config_file is not None:
            return self._model_from_config_file(hf)
        if m.name is not None and m.architecture is not None:
            self.error(
                config_key("model.architecture"),
                "given together with a catalog `name`",
                "drop `architecture` (the catalog has it) or drop `name` and use `hfId`",
            )
            return None
        if m.name is not None:
            found = self.cat.models.get(m.name)
            other = self.cat.model_by_hf_id(m.hf_id) if m.hf_id and found is not None else None
            if other is not None and found is not None and other.alias != found.alias:
                self.error(config_key("model.hfId"), f'"{m.hf_id}" is the catalog\'s {other.alias}, not {m.name}',
                           f"use `name: {other.alias}`, or an hfId that is a variant of {found.hf_id}")
            if found is None:
                self._unknown("model.name", "model", m.name, self.cat.models, "; or use `hfId` with `architecture`")
            return found
        assert m.hf_id is not None
        if m.architecture is not None:
            a = m.architecture
            if a.heads % a.kv_heads:
                self.error(config_key("model.architecture.kvHeads"), f"{a.kv_heads} does not divide heads ({a.heads})",
                           "copy num_key_value_heads and num_attention_heads from the model's config.json")
            if a.head_dim * a.heads != a.hidden:
                self.warnings.append(f"model.architecture: headDim {a.head_dim} x heads {a.heads} = "
                                     f"{a.head_dim * a.heads}, not hidden {a.hidden}; right only for models that "
                                     "state head_dim apart (as Gemma does): check config.json")
            return ModelArch(
                alias=m.hf_id.split("/")[-1].lower(),
                hf_id=m.hf_id,
                family=a.family,
                params=a.params,
                layers=a.layers,
                hidden=a.hidden,
                heads=a.heads,
                kv_heads=a.kv_heads,
                head_dim=a.head_dim,
                ffn=a.ffn,
                vocab=a.vocab,
                max_context=a.max_context,
                gated=a.gated,
                encoder_decoder=a.encoder_decoder,
                active_params=a.active_params,
                experts=a.experts,
                experts_per_token=a.experts_per_token,
            )
        found = self.cat.model_by_hf_id(m.hf_id)
        if found is None:
            self.error(
                config_key("model.hfId"),
                f'"{m.hf_id}" is not in the catalog',
                "add `architecture:` (params, layers, hidden, heads, kvHeads, headDim, ffn, vocab, "
                "maxContext) from its config.json, or use a catalog `name`",
            )
        return found

    def _model_from_config_file(self, hf: HfArchitecture | None) -> ModelArch | None:
        """``hfId`` + ``configFile``: the architecture comes from the model's config.json."""
        m = self.c.model
        for given, key in ((m.name, "name"), (m.architecture, "architecture")):
            if given is not None:
                self.error(config_key(f"model.{key}"), "given together with `configFile`",
                           f"drop `{key}`: the architecture comes from config.json (with `hfId`)")
        if m.hf_id is None:
            self.error(config_key("model.hfId"), "is required with `configFile`",
                       "set `hfId` to the Hugging Face repo the server downloads")
        if hf is None or m.hf_id is None:
            return None
        if hf.quantization and hf.quantization != self.c.precision.weights:
            self.error(config_key("precision.weights"),
                       f"{m.hf_id} is a {hf.quantization} checkpoint (config.json quantization_config), not "
                       f"{self.c.precision.weights}", f"set precision.weights: {hf.quantization}")
        quantized = {hf.quantization: m.hf_id} if hf.quantization else {}
        return replace(hf.model, quantized=quantized, notes=f"architecture read from {m.config_file}")

    def precision(self) -> Precision | None:
        w = self.c.precision.weights
        if w not in PRECISIONS:
            self._unknown("precision.weights", "precision", w, PRECISIONS)
            return None
        return PRECISIONS[w]

    def kv_dtype(self) -> str | None:
        kv = self.c.precision.kv_cache
        if kv not in KV_CACHE_BYTES:
            self._unknown("precision.kvCache", "KV-cache dtype", kv, KV_CACHE_BYTES)
            return None
        return kv

    def server(self) -> ServerKind | None:
        kind = self.c.server.kind
        found = self.cat.servers.get(kind)
        if found is None:
            self._unknown("server.kind", "server kind", kind, self.cat.servers)
        return found

    # -- accelerator -----------------------------------------------------------------------------
    def machine(self, model: ModelArch | None, precision: Precision | None) -> MachineType | None:
        a = self.c.accelerator
        if a.tpu is not None:
            if a.gpu or a.gpus_per_node:
                self.error(
                    config_key("accelerator.tpu"),
                    "a TPU pool cannot also have `gpu` / `gpusPerNode`",
                    "remove `gpu` and `gpusPerNode` for a TPU (JetStream) stack",
                )
                return None
            matches = [m for m in self.cat.machines.values() if m.topology == a.tpu.topology]
            if a.machine_type:
                machine = self._known_machine(a.machine_type)
                if machine and machine.topology != a.tpu.topology:
                    self.error(
                        config_key("accelerator.tpu.topology"),
                        f"{a.machine_type} has topology {machine.topology}, not {a.tpu.topology}",
                        f"use topology {machine.topology} or drop `tpu.topology`",
                    )
                return machine
            if not matches:
                topologies = sorted({m.topology for m in self.cat.machines.values() if m.topology})
                self.error(
                    config_key("accelerator.tpu.topology"),
                    f'no TPU v5e machine type with topology "{a.tpu.topology}"',
                    f"use one of: {', '.join(topologies)}",
                )
                return None
            return matches[0]
        if a.machine_type:
            machine = self._known_machine(a.machine_type)
            if machine is None:
                return None
            if a.gpu and a.gpu != machine.chip.key:
                self.error(
                    config_key("accelerator.gpu"),
                    f'"{a.gpu}" does not match {machine.name}, which carries {machine.chip.key}',
                    "drop `gpu` (it is derived from the machine type) or fix it",
                )
            if a.gpus_per_node and a.gpus_per_node != machine.count:
                self.error(
                    config_key("accelerator.gpusPerNode"),
                    f"{machine.name} has {machine.count} "
                    f"{'chip' if machine.kind == 'tpu' else 'GPU'}(s) per node, not {a.gpus_per_node}",
                    self._counts_fix(machine.chip.key),
                )
            return machine
        if not a.gpu:
            self.error(
                config_key("accelerator"),
                "names no accelerator",
                "set `gpu` (e.g. nvidia-l4) or `machineType` (e.g. g2-standard-8), or `tpu.topology`",
            )
            return None
        if a.gpu not in self.cat.chips or self.cat.chips[a.gpu].kind != "gpu":
            gpus = [k for k, c in self.cat.chips.items() if c.kind == "gpu"]
            self._unknown("accelerator.gpu", "GPU type", a.gpu, gpus)
            return None
        candidates = [m for m in self.cat.machines_for(a.gpu) if a.spot or a.queued_provisioning or m.on_demand]
        if a.gpus_per_node:
            exact = [m for m in candidates if m.count == a.gpus_per_node]
            if not exact:
                self.error(
                    config_key("accelerator.gpusPerNode"),
                    f"no machine type carries {a.gpus_per_node} x {a.gpu}",
                    self._counts_fix(a.gpu),
                )
                return None
            return min(exact, key=lambda m: m.on_demand_usd_h)
        # Derive: the cheapest machine type whose GPUs hold the model (or the requested TP).
        want_tp = self.c.server.tensor_parallel
        for machine in sorted(candidates, key=lambda m: m.on_demand_usd_h):
            if want_tp and machine.count >= want_tp:
                return machine
            if not want_tp and model and precision and default_tp(model, precision, machine.chip, machine.count,
                                                                  self.weights_limit):
                return machine
        return candidates[-1] if candidates else None

    def _known_machine(self, name: str) -> MachineType | None:
        machine = self.cat.machines.get(name)
        if machine is None:
            self._unknown("accelerator.machineType", "machine type", name, self.cat.machines)
        return machine

    def _counts_fix(self, chip_key: str) -> str:
        shapes = ", ".join(f"{m.name} ({m.count})" for m in self.cat.machines_for(chip_key))
        return f"use a GPU count one machine type offers: {shapes}"

    # -- the whole thing -------------------------------------------------------------------------
    def resolve(self, name: str, secrets_present: set[str], source: str, require_secrets: bool,
                joined: ClusterSpec | None = None, hf: HfArchitecture | None = None) -> StackSpec:
        c = self.c
        model, precision, kv_dtype, server = self.model(hf), self.precision(), self.kv_dtype(), self.server()
        machine = self.machine(model, precision)
        a, s = c.accelerator, c.server

        self._location(machine)
        cluster = self._shared_cluster(joined)
        node_count, autoscaling = self._node_count()
        if a.spot and a.reservation not in ("none", "any"):
            self.error(
                config_key("accelerator.reservation"),
                f'spot VMs cannot consume the specific reservation "{a.reservation}"',
                "set `spot: false` to use the reservation, or `reservation: none` to run on spot",
            )
        elif a.spot and a.reservation == "any":
            self.warnings.append("spot VMs never consume reservations: `reservation: any` has no effect")
        if machine and not machine.on_demand and not (a.spot or a.queued_provisioning):
            self.error(
                config_key("accelerator.machineType"),
                f"{machine.name} is sold only as spot or flex-start capacity",
                "set `spot: true` or `queuedProvisioning: true`, or use a3-highgpu-8g",
            )

        supported = not (server and precision and precision.name not in server.precisions)
        checkpoint = self._checkpoint(model, precision if supported else None)
        if server and machine and server.accelerator != machine.kind:
            want = "a TPU (`tpu.topology`)" if server.accelerator == "tpu" else "a GPU (`gpu` or `machineType`)"
            self.error(
                config_key("server.kind"),
                f"{server.name} runs on {server.accelerator.upper()}s but the accelerator is {machine.chip.name}",
                f"give {server.name} {want}, or pick a server for {machine.kind.upper()}s "
                f"({', '.join(n for n, k in self.cat.servers.items() if k.accelerator == machine.kind)})",
            )
        if not supported and server and precision:
            self.error(
                config_key("precision.weights"),
                f"{server.name} does not serve {precision.name}",
                f"use one of {', '.join(server.precisions)} with {server.name}",
            )
        if server and kv_dtype and kv_dtype != "auto" and kv_dtype not in (*server.kv_cache_dtypes, "bf16", "fp16"):
            self.error(
                config_key("precision.kvCache"),
                f"{server.name} has no {kv_dtype} KV cache",
                f"use auto or one of {', '.join(server.kv_cache_dtypes)}",
            )
        if server and model and model.family not in server.families:
            runs_it = [n for n, k in self.cat.servers.items() if model.family in k.families]
            self.error(
                config_key("server.kind"),
                f"{server.name} does not run {model.family} models ({model.hf_id})",
                f"use {', '.join(runs_it) or 'another model'}",
            )
        if server and precision and machine and machine.kind == "gpu":
            self._precision_runs_on(server, precision, machine.chip)
        if machine and precision and precision.name == "bf16" and not machine.chip.bf16:
            self.error(config_key("precision.weights"), f"{machine.chip.name} has no bfloat16", "use fp16")

        tp = self._tensor_parallel(model, precision, machine, server)
        max_model_len = self._max_model_len(model)
        max_batched = s.max_batched_tokens or (DEFAULT_BATCHED_TOKENS if s.chunked_prefill else max_model_len or 0)
        if s.max_batched_tokens and not s.chunked_prefill and max_model_len and s.max_batched_tokens < max_model_len:
            self.error(
                config_key("server.maxBatchedTokens"),
                f"{s.max_batched_tokens} is below maxModelLen {max_model_len} "
                "without chunked prefill: long prompts could never be scheduled",
                "raise it to at least maxModelLen, or enable `chunkedPrefill`",
            )
        if machine and tp and s.replicas * tp > machine.count * node_count:
            self.error(
                config_key("server.replicas"),
                f"{s.replicas} replica(s) x TP {tp} need {s.replicas * tp} "
                f"{'chips' if machine.kind == 'tpu' else 'GPUs'}; the pool has {machine.count * node_count}",
                f"raise `accelerator.nodeCount` to {math.ceil(s.replicas * tp / machine.count)} or lower replicas",
            )
        hf_key, api_key = self._secrets(model, secrets_present, require_secrets)
        kaggle_key = self._kaggle_secret(model, server, secrets_present, require_secrets)
        self._exposure(api_key)
        self._extra_args(server.name if server else None)
        names = self._names(name, machine.kind if machine else "gpu", joined)
        maxtext = self._maxtext(model, server)
        served_name = self._served_name(server.name, checkpoint) if server and checkpoint else ""
        lora, lora_errors = resolve_lora(s.lora, server, served_name, config_key("server.lora"))
        self.errors += lora_errors
        zones = zones_used(tuple(c.gcp.zones or ([c.gcp.zone] if c.gcp.zone else [])))
        loadgen, loadgen_errors, loadgen_warnings = resolve_loadgen(
            c.loadgen, config_key("loadgen"), self.cat.system_machines, zones, names.loadgen_bucket,
            names.loadgen_service_account, names.loadgen_pool, deploying=require_secrets)
        self.errors += loadgen_errors
        self.warnings += loadgen_warnings
        autoscale, autoscale_errors = resolve_autoscale(
            s.autoscaling, config_key("server.autoscaling"), server=server.name if server else None,
            replicas_key_set="replicas" in s.model_fields_set,
            pool_max_chips=machine.count * node_count if machine else None, tp=tp,
            pool_autoscales=autoscaling is not None, shared_cluster=bool(c.cluster.from_stack),
            managed_prometheus=c.cluster.managed_prometheus)
        self.errors += autoscale_errors
        price, price_source = self._price(machine) if machine else (0.0, "")

        if self.errors:
            raise SpecErrors(source, self.errors)
        assert model and precision and kv_dtype and server and machine and tp and max_model_len and checkpoint
        sizing = size(
            model,
            precision,
            kv_dtype,
            machine.chip,
            tp,
            memory_utilization=s.gpu_memory_utilization,
            max_model_len=max_model_len,
            max_batch=s.max_batch,
            tokens_per_step=max_batched,
            weight_share_max=self.weights_limit,
            lora_bytes=lora_bytes(model, lora) if lora else 0.0,
        )
        if sizing.kv_tokens < max_model_len:
            raise SpecErrors(
                source,
                [
                    SpecError(
                        config_key("server.maxModelLen"),
                        f"the KV cache holds {sizing.kv_tokens:,} tokens, less than one sequence of {max_model_len:,}",
                        "lower maxModelLen, raise gpuMemoryUtilization, or add GPUs / quantize",
                    )
                ],
            )
        native = model is not None and model.quantized.get(precision.name) == model.hf_id
        if precision.bits < 8 and not native:  # a model released in the format was trained for it (gpt-oss)
            self.warnings.append(
                f"{precision.name} is {precision.bits}-bit: evaluate the model's accuracy before "
                "serving it (the guide's recommendation 1)"
            )
        self._system_price(cluster)
        return StackSpec(
            name=name,
            source=source,
            project=c.gcp.project,
            region=c.gcp.region,
            zone=c.gcp.zone,
            node_locations=tuple(c.gcp.zones or ([c.gcp.zone] if c.gcp.zone else [])),
            cluster=cluster,
            names=names,
            machine=machine,
            node_count=node_count,
            autoscaling=autoscaling,
            spot=a.spot,
            reservation=a.reservation,
            compact_placement=a.compact_placement,
            queued_provisioning=a.queued_provisioning,
            driver_version=a.driver_version,
            model=model,
            checkpoint=checkpoint,
            revision=c.model.revision,
            served_name=served_name,
            precision=precision,
            kv_cache_dtype=kv_dtype,
            server=server,
            image=s.image or server.image,
            namespace=names.namespace,
            tensor_parallel=tp,
            replicas=autoscale.min_replicas if autoscale else s.replicas,
            max_batch=s.max_batch,
            max_model_len=max_model_len,
            max_batched_tokens=max_batched,
            gpu_memory_utilization=s.gpu_memory_utilization,
            prefix_caching=s.prefix_caching,
            chunked_prefill=s.chunked_prefill,
            extra_args=tuple(s.extra_args),
            exposure=c.exposure.mode,
            allowlist=tuple(c.exposure.allowlist),
            service_port=c.exposure.port,
            hf_token_key=hf_key,
            api_key_key=api_key,
            kaggle_key_key=kaggle_key,
            maxtext=maxtext,
            lora=lora,
            loadgen=loadgen,
            autoscale=autoscale,
            usd_per_node_hour=price,
            price_source=price_source,
            system_usd_per_node_hour=self.cat.system_machines.get(cluster.system_machine_type),
            cluster_fee_usd_h=self.cat.cluster_fee_usd_h,
            sizing=sizing,
            warnings=tuple(self.warnings) + sizing.warnings,
        )

    def _location(self, machine: MachineType | None) -> None:
        self.errors += location_errors(self.c.gcp, self.cat.regions, machine.chip.key if machine else None)

    def _shared_cluster(self, joined: ClusterSpec | None) -> ClusterConfig:
        """``cluster.fromStack``: the cluster stack's settings apply, and this stack may set none of them."""
        c, ref = self.c.cluster, self.c.cluster.from_stack
        if ref is None:
            return c
        if not STACK_REFERENCE.match(ref):
            self.error(config_key("cluster.fromStack"), f'"{ref}" is not a Pulumi stack name',
                       "write the cluster stack's fully qualified name: <organization>/gke-llm-bench/<stack>")
        for field_name in sorted(c.model_fields_set - {"from_stack"}):
            key = ClusterConfig.model_fields[field_name].alias or field_name
            self.error(config_key(f"cluster.{key}"), f"is the cluster stack's to set ({ref} declares the cluster)",
                       "set it in the cluster stack's file, or drop cluster.fromStack for a cluster of this "
                       "stack's own")
        if joined is None:
            self.warnings.append(f"cluster.fromStack: the file of cluster stack {ref} is not beside this one, so "
                                 "its settings and location are checked only at `pulumi up`")
            return c
        g = self.c.gcp
        if joined.project != g.project or joined.region != g.region:
            self.error("gcp:region" if joined.project == g.project else "gcp:project",
                       f"the cluster of {ref} is in {joined.project}/{joined.region}, this stack in "
                       f"{g.project}/{g.region}", "set gcp:project and gcp:region to the cluster stack's values")
        elif joined.zone and tuple(g.zones or [g.zone or ""]) != (joined.zone,):
            self.error("gcp:zone", f"the cluster of {ref} is zonal, in {joined.zone}: its node pools can only be "
                       "there", f"set gcp:zone: {joined.zone}")
        return joined.cluster.model_copy(update={"from_stack": ref})

    def _node_count(self) -> tuple[int, tuple[int, int] | None]:
        a = self.c.accelerator
        if a.queued_provisioning and a.spot:
            self.error(config_key("accelerator.spot"), "set together with queuedProvisioning (flex-start)",
                       "choose one provisioning model: spot VMs, or flex-start (queued, not preemptible)")
        if a.autoscaling is not None:
            if a.node_count is not None:
                self.error(
                    config_key("accelerator.nodeCount"),
                    "set together with `autoscaling`",
                    "use either a fixed `nodeCount` or `autoscaling: {min, max}`",
                )
            if a.autoscaling.min > a.autoscaling.max:
                self.error(
                    config_key("accelerator.autoscaling.min"),
                    f"min {a.autoscaling.min} > max {a.autoscaling.max}",
                    "make min <= max",
                )
            if a.queued_provisioning and a.autoscaling.min > 0:
                self.error(config_key("accelerator.autoscaling.min"),
                           f"is {a.autoscaling.min}, but flex-start (queuedProvisioning) pools always scale from zero",
                           "set autoscaling.min to 0, or drop queuedProvisioning")
            return a.autoscaling.max, (a.autoscaling.min, a.autoscaling.max)
        return a.node_count or 1, None

    def _precision_runs_on(self, server: ServerKind, precision: Precision, chip: Chip) -> None:
        """The server x precision x GPU-generation rules (``servers.yaml`` min_ / max_compute_capability)."""
        newest = server.max_compute_capability
        if server.too_new(chip):
            runs = [n for n, k in self.cat.servers.items() if k.accelerator == "gpu" and not k.max_compute_capability]
            self.error(config_key("server.kind"),
                       f"{server.name}'s image ({server.image}) is not known to run on {chip.name} (compute "
                       f"capability {chip.compute_capability}; it is pinned for {newest} and older)",
                       f"use {', '.join(runs)}, or a GPU of compute capability {newest} or older")
            return
        if server.runs(precision.name, chip):
            return
        minimum = server.min_compute_capability[precision.name]
        able = sorted({c.name for c in self.cat.chips.values() if c.kind == "gpu" and c.capability_at_least(minimum)})
        self.error(config_key("precision.weights"),
                   f"{server.name} serves {precision.name} on compute capability {minimum} and newer; "
                   f"{chip.name} is {chip.compute_capability}",
                   f"use another precision ({', '.join(p for p in server.precisions if p != precision.name)}), "
                   f"or a GPU that runs it: {', '.join(able)}")

    def _checkpoint(self, model: ModelArch | None, precision: Precision | None) -> str | None:
        if model is None or precision is None:
            return None
        explicit = self.c.model.hf_id if self.c.model.name else None
        native = model.native_formats
        if native and precision.name not in native and not explicit and not self.c.model.config_file:
            # (a config file's own format was checked against the precision where it was read)
            # the model's own repository holds no 16-bit weights to serve or quantize (gpt-oss: MXFP4)
            self.error(config_key("precision.weights"),
                       f"{model.hf_id} is published in {' / '.join(native)} only, not {precision.name}",
                       f"set precision.weights: {native[0]}, or name a {precision.name} checkpoint in "
                       f"`model.hfId` beside `model.name`")
            return None
        if precision.pre_quantized:
            checkpoint = explicit or model.quantized.get(precision.name)
            if checkpoint is None:
                self.error(
                    config_key("precision.weights"),
                    f"{precision.name} needs a pre-quantized checkpoint and the catalog knows none for {model.hf_id}",
                    f"set `model.hfId` to a {precision.name.upper()} checkpoint of {model.hf_id}",
                )
            return checkpoint
        return explicit or model.hf_id

    def _tensor_parallel(self, model, precision, machine, server) -> int | None:
        s = self.c.server
        if not (model and precision and machine and server):
            return s.tensor_parallel
        if machine.kind == "tpu":
            tp = s.tensor_parallel or machine.count
            if tp != machine.count:
                self.error(
                    config_key("server.tensorParallel"),
                    f"JetStream shards over every chip of the host ({machine.count})",
                    f"drop tensorParallel or set it to {machine.count}",
                )
            if not fits(model, precision, machine.chip, tp, self.weights_limit):
                self._does_not_fit(model, precision, machine, tp)
            return tp
        if s.tensor_parallel is not None:
            tp = s.tensor_parallel
            if tp > machine.count:
                self.error(
                    config_key("server.tensorParallel"),
                    f"TP {tp} exceeds the {machine.count} GPU(s) per node of {machine.name}",
                    f"use TP <= {machine.count} or a machine type with {tp} GPUs",
                )
                return None
            if not tp_divides(model, tp):
                valid = [t for t in (1, 2, 4, 8) if t <= machine.count and tp_divides(model, t)]
                self.error(
                    config_key("server.tensorParallel"),
                    f"TP {tp} does not divide {model.hf_id}'s {model.heads} attention "
                    f"heads / {model.kv_heads} KV heads",
                    f"use one of: {', '.join(map(str, valid))}",
                )
                return None
            if not fits(model, precision, machine.chip, tp, self.weights_limit):
                self._does_not_fit(model, precision, machine, tp)
            return tp
        tp = default_tp(model, precision, machine.chip, machine.count, self.weights_limit)
        if tp is None:
            self._does_not_fit(model, precision, machine, machine.count)
        return tp

    def _does_not_fit(self, model: ModelArch, precision: Precision, machine: MachineType, tp: int) -> None:
        need_gb = weight_bytes(model, precision) / 1e9
        limit = self.weights_limit * tp * machine.chip.memory_gb
        server = self.cat.servers.get(self.c.server.kind)
        precisions = list(server.precisions) if server else list(PRECISIONS)
        alternatives: list[Alternative] = cheapest_fits(
            self.cat, model, precisions, accelerator_kind=machine.kind, spot=self.c.accelerator.spot, server=server
        )
        fix = (
            "cheapest that fit: " + "; ".join(map(str, alternatives)) if alternatives else "no catalog machine fits it"
        )
        key = "accelerator.machineType" if self.c.accelerator.machine_type else "accelerator.gpu"
        if machine.kind == "tpu":
            key = "accelerator.tpu.topology"
        self.error(
            config_key(key),
            f"{model.hf_id} at {precision.name} needs {need_gb:.1f} GB for weights; {tp} x "
            f"{machine.chip.name} allows {limit:.1f} GB "
            f"({self.weights_limit * 100:.0f} % of {tp * machine.chip.memory_gb:g} GB)",
            fix + (" (or raise sizing.weightsShareMax, at most 0.95, if a KV cache below the guide's 20 % will do)"
                   if self.weights_limit < 0.95 else ""),
        )

    def _max_model_len(self, model: ModelArch | None) -> int | None:
        want = self.c.server.max_model_len
        if model is None:
            return want
        if want is not None and want > model.max_context:
            self.error(
                config_key("server.maxModelLen"),
                f"{want} exceeds {model.hf_id}'s context of {model.max_context}",
                f"use maxModelLen <= {model.max_context}",
            )
            return None
        return want or min(model.max_context, DEFAULT_MAX_MODEL_LEN_CAP)

    def _secrets(self, model, present: set[str], require: bool) -> tuple[str | None, str | None]:
        sec = self.c.secrets
        hf_key = None
        if model is not None and model.gated:
            if not sec.hf_token:
                self.error(
                    config_key("secrets.hfToken"),
                    f"{model.hf_id} is gated on Hugging Face and no HF token is configured",
                    "set `secrets.hfToken` to a config key name (default hfToken) and "
                    "`pulumi config set --secret hfToken <token>`",
                )
            else:
                hf_key = sec.hf_token
                self._require_secret(hf_key, present, require, f"{model.hf_id} is gated on Hugging Face")
        api_key = None
        wants_key = self.c.exposure.mode == "external" or (sec.api_key and sec.api_key in present)
        if wants_key:
            if not sec.api_key:
                self.error(
                    config_key("secrets.apiKey"),
                    "external exposure needs an API key and none is configured",
                    "set `secrets.apiKey` to a config key name (default apiKey)",
                )
            else:
                api_key = sec.api_key
                self._require_secret(api_key, present, require, "an externally exposed endpoint needs an API key")
        return hf_key, api_key

    def _kaggle_secret(self, model, server, present: set[str], require: bool) -> str | None:
        """JetStream's MaxText checkpoint converter downloads Gemma from Kaggle, not Hugging Face."""
        if not (server and model and server.name == "jetstream" and model.family.startswith("gemma")):
            return None
        key = self.c.secrets.kaggle
        if not key:
            self.error(config_key("secrets.kaggle"), "JetStream converts Gemma checkpoints from Kaggle and no Kaggle "
                       "credential is configured", "set `secrets.kaggle` to a config key name (default kaggleJson)")
            return None
        self._require_secret(key, present, require, "JetStream's checkpoint converter downloads Gemma from Kaggle; "
                             "the value is your kaggle.json")
        return key

    def _require_secret(self, key: str, present: set[str], require: bool, why: str) -> None:
        if key in present:
            return
        fix = f"pulumi config set --secret {key} <value>"
        if require:
            self.error(config_key(key), f"is not set: {why}", fix)
        else:
            self.warnings.append(f"{config_key(key)} is not set yet ({why}); before `pulumi up`: {fix}")

    def _exposure(self, api_key: str | None) -> None:
        e = self.c.exposure
        for i, cidr in enumerate(e.allowlist):
            try:
                net = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                self.error(
                    config_key(f"exposure.allowlist[{i}]"),
                    f'"{cidr}" is not a CIDR range', "write it like 203.0.113.0/24"
                )
                continue
            if net.prefixlen == 0:
                self.error(
                    config_key(f"exposure.allowlist[{i}]"),
                    f'"{cidr}" allows the whole internet',
                    "list only the ranges that must reach the endpoint",
                )
        if e.mode == "external" and not e.allowlist:
            self.error(
                config_key("exposure.allowlist"),
                "external exposure needs an allowlist of source CIDRs",
                "list the client ranges (e.g. [203.0.113.0/24]) or use mode: internal / cluster",
            )
        if e.mode == "cluster" and e.allowlist:
            self.warnings.append("exposure.allowlist has no effect with mode: cluster")
        if e.mode == "external" and self.c.server.kind == "jetstream":
            self.error(config_key("exposure.mode"),
                       "JetStream's HTTP server has no authentication: an external endpoint "
                       "would answer anyone", "use mode: internal (VPC only) or cluster (port-forward)")

    def _system_price(self, cluster: ClusterConfig) -> None:
        self.warnings += _system_price_warnings(cluster, self.cat)

    def _price(self, machine: MachineType) -> tuple[float, str]:
        cost, spot = self.c.cost, self.c.accelerator.spot
        override = cost.spot_per_hour if spot else cost.on_demand_per_hour
        if override is not None:
            return override, f"{config_key('cost')} (stack override)"
        if not spot:
            return machine.on_demand_usd_h, machine.source
        if machine.spot_usd_h is None:
            self.error(config_key("cost.spotPerHour"), f"the catalog has no sourced spot price for {machine.name}",
                       f"set it to your region's spot $/h for {machine.name} (on demand: "
                       f"${machine.on_demand_usd_h:g}/h), or drop accelerator.spot")
            return 0.0, ""
        return machine.spot_usd_h, machine.source


def resolve(
    config: StackConfig,
    name: str,
    secrets_present: set[str],
    *,
    source: str = "",
    require_secrets: bool = False,
    catalog: Catalog | None = None,
    joined: ClusterSpec | None = None,
    hf: HfArchitecture | None = None,
) -> StackSpec:
    """Validate ``config`` against the catalog and the guide's rules; raise ``SpecErrors`` listing all problems.
    ``joined``: the cluster stack that ``cluster.fromStack`` names, when its file could be read;
    ``hf``: the architecture read from ``model.configFile``."""
    return _Resolver(config, catalog or load_catalog()).resolve(name, secrets_present, source or name, require_secrets,
                                                                joined, hf)


def resolve_cluster(config: ClusterStackConfig, name: str, *, source: str = "",
                    catalog: Catalog | None = None) -> ClusterSpec:
    """A cluster stack (``role: cluster``): where, the cluster's settings and its names. Raises
    ``SpecErrors`` listing every problem."""
    cat = catalog or load_catalog()
    c, g = config.cluster, config.gcp
    errors = location_errors(g, cat.regions) + _cluster_name_errors(c)
    if c.from_stack or c.existing:
        key = "cluster.fromStack" if c.from_stack else "cluster.existing"
        errors.append(SpecError(config_key(key), "a cluster stack declares its own cluster",
                                "drop it (serving stacks join this stack with cluster.fromStack)"))
    if errors:
        raise SpecErrors(source or name, errors)
    return ClusterSpec(name=name, source=source or name, project=g.project, region=g.region, zone=g.zone,
                       node_locations=tuple(g.zones or ([g.zone] if g.zone else [])), cluster=c,
                       names=ResourceNames.derive(name, "gpu", c.name, None, g.project),
                       system_usd_per_node_hour=cat.system_machines.get(c.system_machine_type),
                       cluster_fee_usd_h=cat.cluster_fee_usd_h, warnings=tuple(_system_price_warnings(c, cat)))


def _cluster_name_errors(cluster: ClusterConfig) -> list[SpecError]:
    if cluster.name and not CLUSTER_NAME.match(cluster.name):
        return [SpecError(config_key("cluster.name"), f'"{cluster.name}" is not a GKE cluster name',
                          "1-40 characters: lowercase letters, digits and hyphens, starting with a letter and not "
                          "ending with a hyphen; or leave it out to derive one from the stack name")]
    return []


def _system_price_warnings(cluster: ClusterConfig, catalog: Catalog) -> list[str]:
    system = cluster.system_machine_type
    if system in catalog.system_machines:
        return []
    return [f"cluster.systemMachineType: no catalog price for {system}, so the all-in $/h leaves the system pool "
            f"out (priced: {', '.join(catalog.system_machines)})"]
