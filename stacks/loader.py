"""Read a Pulumi stack file (or a Pulumi config mapping) into a validated ``StackSpec``.

Two entry points, one path: ``load_stack_file`` for the offline tools (reads the YAML directly)
and ``spec_from_config`` for ``__main__.py`` (which hands over what ``pulumi.Config`` holds).
Both produce the same ``StackConfig`` -> ``StackSpec``; pydantic's errors are translated here into
``SpecError``s that name the key as written in the file.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .cluster_spec import ClusterSpec
from .config import PROJECT, PROVIDER_NAMESPACES, ROLES, ClusterStackConfig, SecretsConfig, StackConfig
from .errors import SpecError, SpecErrors, did_you_mean
from .hf_config import ConfigFileError, HfArchitecture, read_architecture
from .resolve import resolve, resolve_cluster
from .secret_values import CONFIG_KEY_NAME, REDACTED, looks_like_secret, shown
from .spec import StackSpec
from .stack_yaml import read_stack_document

STACKS_DIR = Path(__file__).parent


def all_stack_files(directory: Path = STACKS_DIR) -> dict[str, Path]:
    """Every committed stack file, serving and cluster stacks: name -> path of ``Pulumi.<name>.yaml``."""
    return {p.name[len("Pulumi.") : -len(".yaml")]: p for p in sorted(directory.glob("Pulumi.*.yaml"))}


def stack_role(path: Path) -> str:
    """``gke-llm-bench:role`` of a stack file (``serving`` unless it says ``cluster``); a file that
    cannot be read counts as serving, so loading it reports what is wrong with it."""
    try:
        return _role(path, path.stat().st_mtime_ns)
    except OSError:
        return "serving"


@functools.lru_cache(maxsize=256)
def _role(path: Path, _mtime_ns: int) -> str:
    """Parsed once per file version: ``stack_files()`` is called often (per stack in the demo)."""
    try:
        role = yaml.safe_load(path.read_text(encoding="utf-8")).get("config", {}).get(f"{PROJECT}:role")
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError):
        return "serving"
    return "cluster" if role == "cluster" else "serving"


def stack_files(directory: Path = STACKS_DIR) -> dict[str, Path]:
    """Committed serving stacks (what the load tester, the demo and analysis iterate)."""
    return {n: p for n, p in all_stack_files(directory).items() if stack_role(p) == "serving"}


def cluster_stack_files(directory: Path = STACKS_DIR) -> dict[str, Path]:
    """Committed cluster stacks (``role: cluster``): a cluster for serving stacks to join."""
    return {n: p for n, p in all_stack_files(directory).items() if stack_role(p) == "cluster"}


def resolve_stack_arg(arg: str) -> tuple[str, Path]:
    """A stack name (committed, of either role) or a path to a stack file."""
    path = Path(arg)
    if path.suffix in (".yaml", ".yml") and path.exists():
        name = path.name
        name = name[len("Pulumi.") :] if name.startswith("Pulumi.") else name
        return name.rsplit(".", 1)[0], path
    files = all_stack_files()
    if arg in files:
        return arg, files[arg]
    raise SpecErrors(
        arg,
        [
            SpecError(
                "stack",
                f'no stack named "{arg}"{did_you_mean(arg, files)}',
                f"use one of: {', '.join(files)}, or a path to a Pulumi.<stack>.yaml file",
            )
        ],
    )


def load_stack_file(path: Path, name: str | None = None, *, require_secrets: bool = False) -> StackSpec:
    """Parse and validate one serving stack file. Raises ``SpecErrors`` listing every problem."""
    name = name or path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    config = read_stack_document(path)
    return spec_from_config(config, name, source=str(path), require_secrets=require_secrets)


def load_any_stack_file(path: Path, name: str | None = None, *,
                        require_secrets: bool = False) -> StackSpec | ClusterSpec:
    """A serving stack's ``StackSpec`` or a cluster stack's ``ClusterSpec`` (``check``, ``plan``, ``diff``)."""
    name = name or path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    return any_spec_from_config(read_stack_document(path), name, source=str(path), require_secrets=require_secrets)


def spec_from_config(
    flat: Mapping[str, Any], name: str, *, source: str | None = None, require_secrets: bool = False
) -> StackSpec:
    """Validate a flat Pulumi config mapping (``"ns:key" -> value``) of a serving stack into a ``StackSpec``."""
    spec = any_spec_from_config(flat, name, source=source, require_secrets=require_secrets)
    if isinstance(spec, ClusterSpec):
        raise SpecErrors(source or name, [SpecError(
            f"{PROJECT}:role", f"{name} is a cluster stack: it serves no model",
            "benchmark a serving stack that joins it (cluster.fromStack); `python -m offline plan` and "
            "`python -m stacks check` take cluster stacks too")])
    return spec


def any_spec_from_config(
    flat: Mapping[str, Any], name: str, *, source: str | None = None, require_secrets: bool = False
) -> StackSpec | ClusterSpec:
    """Validate a flat Pulumi config mapping (``"ns:key" -> value``) into the spec its role says.

    Secret values are never read: a secret key only counts as *present* (``{secure: ...}`` in a
    file, or any value handed over by the Pulumi runtime, which keeps it a secret).
    """
    source = source or name
    errors: list[SpecError] = []
    nested: dict[str, Any] = {"gcp": {}}
    secrets_present: set[str] = set()
    plaintext_secrets: set[str] = set()
    for full_key, value in flat.items():
        namespace, _, key = str(full_key).partition(":")
        if not key:
            namespace, key = PROJECT, namespace
        if namespace == PROJECT:
            nested[key] = value
            if isinstance(value, dict) and set(value) == {"secure"}:
                secrets_present.add(key)
        elif namespace == "gcp":
            nested["gcp"][key] = value
        elif namespace not in PROVIDER_NAMESPACES:
            errors.append(
                SpecError(
                    full_key,
                    f'unknown config namespace "{namespace}"{did_you_mean(namespace, (PROJECT, *PROVIDER_NAMESPACES))}',
                    f"project keys are written `{PROJECT}:<key>`",
                )
            )
    role = nested.get("role", "serving")
    if role not in ROLES:
        errors.append(SpecError(f"{PROJECT}:role", f"{shown(role, 'role')} is not a stack role",
                                f"use one of: {', '.join(ROLES)} (serving is the default)"))
        raise SpecErrors(source, errors)
    if role == "cluster":
        return _cluster_spec(nested, name, source, errors)
    # A token pasted where a key *name* belongs: refuse it without repeating it, and never use it as a name.
    errors += _pasted_secrets(nested.get("secrets"))
    # Secret keys named by the `secrets` section are taken out before schema validation.
    secret_names = _secret_key_names(nested.get("secrets"))
    for secret_key in secret_names:
        if secret_key in nested:
            value = nested.pop(secret_key)
            if isinstance(value, dict) and set(value) == {"secure"}:
                secrets_present.add(secret_key)
            else:
                plaintext_secrets.add(secret_key)
    for secret_key in sorted(plaintext_secrets):
        errors.append(
            SpecError(
                f"{PROJECT}:{secret_key}",
                "holds a plaintext value; secrets must be encrypted",
                f"pulumi config set --secret {secret_key} <value>  (and remove the plaintext)",
            )
        )
    try:
        config = StackConfig.model_validate(nested)
    except ValidationError as exc:
        errors.extend(_translate(exc))
        errors.extend(_semantic_errors_despite(exc, nested, name, secrets_present, source, require_secrets, errors))
        raise SpecErrors(source, errors) from None
    if errors:
        raise SpecErrors(source, errors)
    return resolve(config, name, secrets_present, source=source, require_secrets=require_secrets,
                   joined=joined_cluster(config.cluster.from_stack, source),
                   hf=_hf_architecture(config, source))


def _hf_architecture(config: StackConfig, source: str) -> HfArchitecture | None:
    """``model.configFile``: the model's config.json, read from disk (relative to the stack file)."""
    config_file = config.model.config_file
    if config_file is None:
        return None
    base = Path(source).parent if Path(source).is_file() else STACKS_DIR
    path = Path(config_file) if Path(config_file).is_absolute() else base / config_file
    key = f"{PROJECT}:model.configFile"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecErrors(source, [SpecError(key, f"{path} does not exist",
                                            "give the path of the model's config.json, relative to the stack "
                                            "file (download it once: huggingface-cli download <hfId> config.json)")]
                         ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpecErrors(source, [SpecError(key, f"{path} is not a readable JSON file ({exc})",
                                            "save the model's config.json as it is on the Hub")]) from None
    try:
        return read_architecture(doc, config.model.hf_id or "config.json", gated=config.model.gated)
    except ConfigFileError as exc:
        raise SpecErrors(source, [SpecError(key, f"{path}: {exc.key} {exc.message}",
                                            "check the file against the model's config.json on the Hub, or "
                                            "give `model.architecture` by hand instead")]) from None


def _cluster_spec(nested: dict[str, Any], name: str, source: str, errors: list[SpecError]) -> ClusterSpec:
    """A cluster stack: ``gcp:*`` and ``gke-llm-bench:cluster`` only."""
    allowed = {"role", "gcp", "cluster"}
    for key in sorted(set(nested) - allowed):
        errors.append(SpecError(f"{PROJECT}:{key}", "a cluster stack (role: cluster) serves no model",
                                "move it to a serving stack that joins this one with cluster.fromStack"))
    try:
        config = ClusterStackConfig.model_validate({k: v for k, v in nested.items() if k in allowed})
    except ValidationError as exc:
        raise SpecErrors(source, errors + _translate(exc)) from None
    try:
        spec = resolve_cluster(config, name, source=source)
    except SpecErrors as exc:
        raise SpecErrors(source, errors + exc.errors) from None
    if errors:
        raise SpecErrors(source, errors)
    return spec


def joined_cluster(reference: str | None, source: str) -> ClusterSpec | None:
    """The cluster stack ``cluster.fromStack`` names, read from its file beside this one (or among
    the committed stacks); None when there is no such file (then ``pulumi up`` checks it)."""
    if reference is None:
        return None
    stack = reference.rsplit("/", 1)[-1]
    here = Path(source).parent if Path(source).is_file() else STACKS_DIR
    path = here / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return None
    try:
        spec = load_any_stack_file(path, stack)
    except SpecErrors as exc:
        raise SpecErrors(source, [SpecError(f"{PROJECT}:cluster.fromStack", f"{reference}: its stack file "
                                            f"{path.name} is invalid ({len(exc.errors)} problem(s))",
                                            f"fix it first: python -m stacks check {path}")]) from None
    if not isinstance(spec, ClusterSpec):
        raise SpecErrors(source, [SpecError(f"{PROJECT}:cluster.fromStack", f"{reference} is a serving stack, "
                                            "not a cluster stack", f"join a stack with `{PROJECT}:role: cluster`, or "
                                            "use cluster.existing to join another stack's cluster by name")])
    return spec


def _semantic_errors_despite(
    exc: ValidationError,
    nested: dict[str, Any],
    name: str,
    secrets_present: set[str],
    source: str,
    require_secrets: bool,
    known: list[SpecError],
) -> list[SpecError]:
    """Catalog and cross-field errors of a file that also has schema errors.

    The keys pydantic rejected are dropped (so their defaults apply) and the rest is resolved, so
    that one run lists a typo *and* an unknown GPU. Missing required keys cannot be dropped; then
    only the schema errors are reported.
    """
    pruned = copy.deepcopy(nested)
    for err in exc.errors():
        if err["type"] == "missing":
            return []
        loc: list[Any] = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        *parents, leaf = loc
        holder: Any = pruned
        for part in parents:
            if isinstance(holder, dict) or (isinstance(holder, list) and isinstance(part, int)):
                holder = holder[part]
            else:
                holder = None
        if isinstance(holder, dict):
            holder.pop(leaf, None)
        elif isinstance(holder, list) and isinstance(leaf, int) and leaf < len(holder):
            holder[leaf] = None
    try:
        config = StackConfig.model_validate(pruned)
        resolve(config, name, secrets_present, source=source, require_secrets=require_secrets)
    except ValidationError:
        return []
    except SpecErrors as semantic:
        seen = {e.key for e in known}
        return [e for e in semantic.errors if e.key not in seen]
    return []


#: ``secrets`` slot -> the config key it names by default (from the schema, one home)
DEFAULT_SECRET_KEYS: dict[str, str] = {f.alias or n: f.default for n, f in SecretsConfig.model_fields.items()}


def _secret_key_names(secrets_section: Any) -> set[str]:
    names = set(DEFAULT_SECRET_KEYS.values())
    if isinstance(secrets_section, dict):
        names |= {v for v in secrets_section.values() if isinstance(v, str) and CONFIG_KEY_NAME.match(v)}
    return names


def _pasted_secrets(secrets_section: Any) -> list[SpecError]:
    """``secrets.<slot>`` must name a config key; a value that is not a key name (a pasted token,
    say) is an error that does not repeat it, and the slot is cleared so nothing downstream echoes it."""
    out: list[SpecError] = []
    if not isinstance(secrets_section, dict):
        return out
    for slot, value in list(secrets_section.items()):
        if (isinstance(value, str) and not CONFIG_KEY_NAME.match(value)) or looks_like_secret(value):
            what = "looks like a secret value itself" if looks_like_secret(value) else "is not a config key name"
            default = DEFAULT_SECRET_KEYS.get(slot, slot)
            out.append(SpecError(f"{PROJECT}:secrets.{slot}", f"{what} (not shown): it must name the config key "
                                 "that holds the secret",
                                 f"write `secrets.{slot}: {default}`, then `pulumi config set --secret {default} "
                                 "<value>`; if the value was a real credential, revoke it"))
            secrets_section[slot] = default
    return out


def _key_name(loc: tuple[Any, ...]) -> str:
    """('accelerator', 'gpusPerNode') -> 'gke-llm-bench:accelerator.gpusPerNode'."""
    if not loc:
        return "config"
    head, *rest = loc
    out = "gcp" if head == "gcp" else f"{PROJECT}:{head}"
    for i, part in enumerate(rest):
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += (":" if head == "gcp" and i == 0 else ".") + str(part)
    return out


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that owns the mapping at ``loc`` (for did-you-mean on keys)."""
    model: Any = StackConfig
    for part in loc:
        if isinstance(part, int):
            continue
        fields = {f.alias or n: f for n, f in model.model_fields.items()}
        field = fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return None
    return model


def _translate(exc: ValidationError) -> list[SpecError]:
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = _key_name(loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            owner = _model_at(loc[:-1])
            allowed = [f.alias or n for n, f in owner.model_fields.items()] if owner else []
            if owner is StackConfig:
                allowed = [a for a in allowed if a != "gcp"]
            hint = did_you_mean(str(loc[-1]), allowed)
            out.append(SpecError(key, f"unknown config key{hint}", f"valid keys here: {', '.join(allowed)}"))
        elif kind == "missing":
            out.append(SpecError(key, "is required", "add it to the stack file"))
        elif kind == "literal_error":
            out.append(
                SpecError(
                    key,
                    f"{shown(err['input'], key)} is not allowed"
                    f"{'' if secret_like(err['input'], key) else did_you_mean(err['input'], _literal_choices(err))}",
                    f"use one of: {err['ctx']['expected']}",
                )
            )
        elif kind.endswith("_type") or kind in ("model_type", "model_attributes_type", "dict_type"):
            expected = kind.removesuffix("_type").replace("model_attributes", "mapping").replace("model", "mapping")
            out.append(
                SpecError(
                    key,
                    f"expected a {expected}, got {type(err['input']).__name__} {shown(err['input'], key)}",
                    f"write it as a {expected} (no quotes around numbers and booleans)",
                )
            )
        elif kind == "finite_number":
            out.append(SpecError(key, f"{shown(err['input'], key)} is not a finite number",
                                 "write a number (.inf and .nan are YAML floats, never a valid setting)"))
        elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
            out.append(SpecError(key, f"{shown(err['input'], key)}: {err['msg'].lower()}", "use a value in range"))
        else:
            out.append(SpecError(key, err["msg"], "see the config schema in README"))
    return out


def secret_like(value: Any, key: str) -> bool:
    return shown(value, key) == REDACTED


def _literal_choices(err: Any) -> list[str]:
    expected = str(err.get("ctx", {}).get("expected", ""))
    return [c.strip(" '") for c in expected.replace(" or ", ",").split(",") if c.strip(" '")]
