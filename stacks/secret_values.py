"""Recognising secrets where they do not belong, so no message ever repeats one.

A stack file names its secrets (``secrets.hfToken: hfToken``) and keeps their values encrypted in
Pulumi config. Users still paste a token into a name slot, a server flag or a type-mismatched field;
every message about such a value says what is wrong and how to fix it *without the value*. The
shapes below are the public prefixes of the credentials this tool meets (Hugging Face, OpenAI-style
API keys, GitHub, Google API keys and OAuth tokens); anything else long and random-looking is
treated as a secret too.
"""

from __future__ import annotations

import re
from typing import Any

TOKEN_SHAPES = (
    re.compile(r"hf_[A-Za-z0-9]{20,}"),
    re.compile(r"sk-[A-Za-z0-9_-]{16,}"),
    re.compile(r"(?:ghp|gho|ghs|github_pat)_[A-Za-z0-9_]{20,}"),
    re.compile(r"AIza[0-9A-Za-z_-]{30,}"),
    re.compile(r"ya29\.[0-9A-Za-z_.-]{20,}"),
)
#: config field names whose values are secrets whatever they look like (the last segment of a key path)
SECRET_FIELD = re.compile(r"(?:token|secret|password|passwd|credential|apikey|api_key|kaggle\w*)$", re.IGNORECASE)
#: a Pulumi config key name (what a ``secrets.*`` slot must hold)
CONFIG_KEY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
REDACTED = "<redacted>"


def looks_like_secret(value: Any) -> bool:
    """A string that is, or contains, a credential: a known token shape, or 32+ characters of
    letters and digits mixed like a random key."""
    if not isinstance(value, str):
        return False
    if any(shape.search(value) for shape in TOKEN_SHAPES):
        return True
    for word in re.findall(r"[A-Za-z0-9_+/=-]{32,}", value):
        classes = sum(bool(re.search(p, word)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
        if classes >= 2 and not re.fullmatch(r"[a-z-]+", word):
            return True
    return False


def shown(value: Any, field_path: str = "") -> str:
    """``repr(value)`` for a message, or ``<redacted>`` when the field or the value is a secret."""
    last = re.split(r"[.:\[]", field_path)[-1]
    if "secrets." in field_path or SECRET_FIELD.search(last) or looks_like_secret(value):
        return REDACTED
    return repr(value)


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with every given secret value, and anything token-shaped, replaced by ``<redacted>``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    for shape in TOKEN_SHAPES:
        text = shape.sub(REDACTED, text)
    return text
