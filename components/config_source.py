"""The stack's whole configuration as the Pulumi runtime holds it, in the shape ``spec_from_config`` reads.

``pulumi.Config`` answers for one key at a time; validating the stack needs every key (a typo in a
key name must be an error, not silently ignored). The language host hands the program its config
as PULUMI_CONFIG (JSON) plus the list of secret keys; tests and the offline plan set it with
``pulumi.runtime.set_all_config``. Both are read here.

Secret values never enter the spec: a secret key is passed on as ``{"secure": "[secret]"}`` (the
same marker a stack file holds), so validation sees it as present; components read the value
itself with ``pulumi.Config.require_secret``, which keeps it a secret end to end.
"""

from __future__ import annotations

import json
from typing import Any

from pulumi.runtime import config as runtime_config

SECRET_MARKER = {"secure": "[secret]"}


def _decode(value: Any) -> Any:
    """Object / list / number / bool config arrives as JSON text; plain strings stay strings."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text[:1] in ("{", "[") or text in ("true", "false") or _is_number(text):
        try:
            return json.loads(text)
        except ValueError:
            return value
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def flat_config() -> dict[str, Any]:
    """``"namespace:key" -> value`` for every config key; secrets replaced by the secure marker."""
    values: dict[str, Any] = dict(runtime_config.get_config_env())
    values.update(runtime_config.CONFIG.get())
    secret_keys = set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())
    return {key: (dict(SECRET_MARKER) if key in secret_keys else _decode(value)) for key, value in values.items()}
