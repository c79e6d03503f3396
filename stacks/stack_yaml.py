"""Reading a stack file: the one YAML reader ``check``, ``plan`` and ``diff`` share.

Stricter than ``yaml.safe_load`` where a silent pass would mislead: a key written twice is an error
(YAML keeps the last one; the user meant one of them), anchors and aliases are refused (a stack file
needs none, and a chain of aliases expands exponentially: the "billion laughs" document), and bytes
that are not UTF-8 are reported with their line. Every problem names the file and the line, and
becomes a ``SpecErrors``, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .config import PROJECT
from .errors import SpecError, SpecErrors


class _StrictLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError("while reading the stack file", None,
                                       f"an alias (*{event.anchor}) refers to an anchor: stack files take none",
                                       event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.MarkedYAMLError("while reading a mapping", seen[key],
                                           f"the key {key!r} appears twice", key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


def _error(path: Path, message: str, fix: str) -> SpecErrors:
    return SpecErrors(str(path), [SpecError("(file)", message, fix)])


def read_stack_document(path: Path) -> dict[str, Any]:
    """The stack file's ``config:`` mapping, or ``SpecErrors`` naming the file, line and fix."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _error(path, f"line {line}: byte 0x{raw[exc.start]:02x} is not UTF-8",
                     "save the file as UTF-8") from None
    try:
        document = yaml.load(text, Loader=_StrictLoader) or {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or str(exc)
        fix = ("indent with spaces, not tabs" if "\\t" in problem or "\t" in problem
               else "write the key once" if "appears twice" in problem
               else "write the value out instead of using an anchor" if "alias" in problem
               else "fix the YAML syntax")
        raise _error(path, f"not valid YAML: {where}{problem}", fix) from None
    except yaml.YAMLError as exc:
        raise _error(path, f"not valid YAML: {exc}", "fix the YAML syntax") from None
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise _error(path, "the file has no `config:` mapping",
                     f"a stack file is `config:` followed by `gcp:*` and `{PROJECT}:*` keys; see README")
    return document["config"]
