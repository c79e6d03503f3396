"""Pulumi.yaml against the rules the Pulumi CLI applies when it loads the project and a stack.

(pulumi/sdk/go/common/workspace: Project.Validate and the stack-config merge.) A declared key
with no default is required in every stack; only string / integer / boolean / array may be
declared as a type; keys outside the project's namespace may carry only a `value`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from stacks.config import PROJECT
from stacks.loader import all_stack_files

ROOT = Path(__file__).resolve().parents[2]
CLI_TYPES = {"string", "integer", "boolean", "array"}


def project() -> dict:
    return yaml.safe_load((ROOT / "Pulumi.yaml").read_text())


def test_project_file_shape() -> None:
    p = project()
    assert p["name"] == PROJECT
    assert p["runtime"]["name"] == "python" and p["stackConfigDir"] == "stacks"
    assert (ROOT / "__main__.py").exists()


def test_config_declarations_are_valid_for_the_cli() -> None:
    for key, decl in project().get("config", {}).items():
        decl = decl if isinstance(decl, dict) else {"value": decl}
        assert not ("default" in decl and "value" in decl), key
        namespaced_by_project = ":" not in key or key.startswith(f"{PROJECT}:")
        if namespaced_by_project:
            if "type" in decl:
                assert decl["type"] in CLI_TYPES, f"{key}: the CLI has no type {decl['type']!r}"
                if decl["type"] == "array":
                    assert "items" in decl, key
        else:
            assert "type" not in decl and "default" not in decl and "value" in decl, key


def test_no_key_is_required_of_both_roles_and_role_defaults_to_serving() -> None:
    """A cluster stack has no model and a serving stack no `role`: a key the CLI requires of every
    stack would stop one of them at `pulumi up` before the program could say what is wrong."""
    config = project().get("config", {})
    assert config[f"{PROJECT}:role"]["default"] == "serving"
    required = [k for k, d in config.items() if isinstance(d, dict) and "default" not in d and "value" not in d]
    assert not required
    roles = {yaml.safe_load(p.read_text())["config"].get(f"{PROJECT}:role", "serving")
             for p in all_stack_files().values()}
    assert roles == {"serving", "cluster"}
