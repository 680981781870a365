"""The import rules of docs/ARCHITECTURE.md, checked by walking the AST of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Modules that wire everything together may import anything.
COMPOSITION_ROOTS = {
    "paygate.cli",
    "paygate.wiring",
    "paygate.supervisor",
    "paygate.serve",
    "paygate.__main__",
    "paygate.testing",
}


# The repository's folders and the import names they install as (setup.cfg's package_dir).
PACKAGE_DIRS = {"paygate": "paygate", "plugins": "paygate.builtin", "web": "paygate.web"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE_DIRS[parts[0]], *parts[1:]])


def imports_of(path: Path) -> list[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved); a name taken
    from a package counts as a module when the package has a submodule of that name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append(target)
            found.extend(
                f"{target}.{alias.name}"
                for alias in node.names
                if is_module(f"{target}.{alias.name}")
            )
    return found


def is_module(dotted: str) -> bool:
    parts = dotted.split(".")
    for folder, name in PACKAGE_DIRS.items():
        prefix = name.split(".")
        if parts[: len(prefix)] == prefix and folder != "paygate":
            parts = [folder, *parts[len(prefix) :]]
            break
    base = ROOT.joinpath(*parts)
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def modules(*tops: str):
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield module_name(path), path


def layer(name: str) -> str | None:
    for prefix in ("paygate.api", "paygate.jobs", "paygate.services", "paygate.db", "paygate.web"):
        if name == prefix or name.startswith(prefix + "."):
            return prefix
    return None


# Which layers each layer must never import.
FORBIDDEN = {
    "paygate.services": {"paygate.jobs", "paygate.api", "paygate.web"},
    "paygate.db": {"paygate.services", "paygate.jobs", "paygate.api", "paygate.web"},
    "paygate.api": {"paygate.jobs", "paygate.db", "paygate.web"},
    "paygate.jobs": {"paygate.api", "paygate.web"},
    "paygate.web": {"paygate.jobs", "paygate.db"},
}


def violations() -> list[str]:
    found = []
    for name, path in modules("paygate", "plugins", "web"):
        if name in COMPOSITION_ROOTS:
            continue
        imported = imports_of(path)
        mine = layer(name)
        for target in imported:
            theirs = layer(target)
            if mine and theirs and theirs in FORBIDDEN.get(mine, ()):
                if not (mine == "paygate.api" and target == "paygate.wiring"):
                    found.append(f"{name} imports {target} ({mine} -> {theirs})")
            builtin = name == "paygate.builtin" or name.startswith("paygate.builtin.")
            if not builtin and (
                target == "paygate.builtin" or target.startswith("paygate.builtin.")
            ):
                found.append(f"{name} imports the plugin {target}")
            if builtin and target.startswith("paygate."):
                found.append(f"plugin {name} imports {target}: only top-level paygate names")
            top = target.split(".")[0]
            if top in ("psycopg", "psycopg_pool") and not name.startswith("paygate.db"):
                found.append(f"{name} imports {target}: only paygate.db talks to PostgreSQL")
            if top == "huey" and not name.startswith("paygate.jobs"):
                found.append(f"{name} imports {target}: only paygate.jobs knows Huey")
            if top == "falcon" and name.startswith(("paygate.services", "paygate.db")):
                found.append(f"{name} imports Falcon")
    return found


def hook_calls() -> list[str]:
    """Modules other than paygate.plugins that call ``<something>.hook.<name>(...)``."""
    found = []
    for name, path in modules("paygate", "plugins", "web"):
        if name == "paygate.plugins":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "hook"
            ):
                found.append(f"{name} calls .hook.{node.attr}")
    return found


def test_imports_point_down_and_stay_in_their_lane():
    assert violations() == []


def test_only_the_plugin_manager_calls_hooks():
    assert hook_calls() == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from paygate.services import payments", "services"),
        ("from paygate.jobs import huey", "jobs"),
    ],
)
def test_the_rule_checker_catches_a_forbidden_import(tmp_path, monkeypatch, source, expected):
    """A planted violation must be reported: the checker itself can fail."""
    planted = ROOT / "paygate" / "db" / "_planted_violation.py"
    planted.write_text(source + "\n")
    try:
        assert any("_planted_violation" in v for v in violations())
    finally:
        planted.unlink()
