"""Cloud resource names derived from the stack name (GCP ids allow [a-z0-9-], start with a letter)."""

from __future__ import annotations

import hashlib
import re


def resource_suffix(stack: str, limit: int) -> str:
    """``stack`` as a GCP-id fragment of at most ``limit`` chars; a short hash keeps truncations unique."""
    clean = re.sub(r"[^a-z0-9-]+", "-", stack.lower()).strip("-") or "stack"
    if not clean[0].isalpha():
        clean = "s-" + clean
    if len(clean) <= limit:
        return clean
    digest = hashlib.sha256(stack.encode()).hexdigest()[:6]
    return f"{clean[: limit - 7].rstrip('-')}-{digest}"
