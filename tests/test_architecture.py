"""The import rules of docs/ARCHITECTURE.md, checked by walking the AST of every module: layers,
no import cycles (imports inside functions included), and only ``paygate.config`` reads the
environment."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import pytest

from paygate.config import Settings

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
        ("from paygate.jobs.queue import build_queue", "jobs"),
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


# -- the developer CLI --------------------------------------------------------------------------
# ``paygate listen|trigger|payments|refunds`` talk HTTP to a gateway through the Python client
# (paygate_client), never to its record: no services, database, queue, plugins or wiring. Only
# they import the client.
DEVELOPER_CLI = {"paygate.devcli", "paygate.devlisten", "paygate.devtrigger"}
GATEWAY_INSIDES = ("paygate.wiring", "paygate.plugins", "paygate.embedded", "paygate.supervisor")


def developer_cli_violations(cli: set[str] = DEVELOPER_CLI) -> list[str]:
    found = []
    for name, path in modules("paygate", "plugins", "web"):
        for target in imports_of(path):
            if target.split(".")[0] == "paygate_client" and name not in cli:
                found.append(f"{name} imports {target}: only the developer CLI uses the client")
            inside = layer(target) or target.startswith(GATEWAY_INSIDES)
            if name in cli and inside:
                found.append(f"{name} imports {target}: the developer CLI talks HTTP only")
    return found


def test_the_developer_cli_talks_http_through_the_client_only():
    assert developer_cli_violations() == []


@pytest.mark.parametrize(
    "counts_as_cli, source",
    [
        (True, "from .services import payments"),
        (True, "from .wiring import build_context"),
        (False, "import paygate_client"),
    ],
)
def test_the_developer_cli_checker_catches_a_planted_import(counts_as_cli, source):
    planted = ROOT / "paygate" / "_planted_cli.py"
    planted.write_text(source + "\n")
    cli = DEVELOPER_CLI | ({"paygate._planted_cli"} if counts_as_cli else set())
    try:
        assert [v for v in developer_cli_violations(cli) if "_planted_cli" in v]
    finally:
        planted.unlink()


# -- import cycles ------------------------------------------------------------------------------


def import_graph() -> dict[str, set[str]]:
    """Every module under paygate/, plugins/ and web/ and the modules of that tree it imports,
    wherever the import statement is (module level, inside a function, under TYPE_CHECKING).
    ``from package import submodule`` is an edge to the package and to the submodule: Python
    runs the package's ``__init__`` first."""
    tree = dict(modules("paygate", "plugins", "web"))
    return {
        name: {target for target in imports_of(path) if target in tree and target != name}
        for name, path in tree.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[str]:
    """One path per strongly connected component with more than one module, as
    ``a -> b -> ... -> a`` (Tarjan's algorithm, then the shortest way back within it)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [" -> ".join(shortest_loop(graph, component)) for component in components]


def shortest_loop(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    start = min(component)
    paths = {nxt: [start, nxt] for nxt in sorted(graph[start] & component)}
    queue = list(paths)
    while queue:
        node = queue.pop(0)
        if node == start:
            return paths[node]
        for nxt in sorted(graph[node] & component):
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no loop through {start}")  # a component always has one


def test_there_is_no_import_cycle_not_even_inside_functions():
    assert cycles(import_graph()) == []


@contextmanager
def planted(files: dict[str, str]) -> Iterator[None]:
    """Write ``files`` (paths relative to the repository) for the block, and remove them."""
    paths = [ROOT / relative for relative in files]
    try:
        for path, text in zip(paths, files.values(), strict=True):
            path.write_text(text)
        yield
    finally:
        for path in paths:
            path.unlink(missing_ok=True)


@pytest.mark.parametrize(
    "first, second",
    [
        ("from . import _planted_cycle_b\n", "from . import _planted_cycle_a\n"),
        (
            "from paygate.jobs._planted_cycle_b import later\n",
            "def later():\n    from ._planted_cycle_a import later  # hidden in a function\n",
        ),
    ],
    ids=["module-level", "inside-a-function"],
)
def test_the_cycle_checker_reports_a_planted_cycle(first, second):
    """A planted cycle must be reported with its path: the checker itself can fail."""
    files = {
        "paygate/jobs/_planted_cycle_a.py": first,
        "paygate/jobs/_planted_cycle_b.py": second,
    }
    with planted(files):
        found = cycles(import_graph())
    assert found == [
        "paygate.jobs._planted_cycle_a -> paygate.jobs._planted_cycle_b"
        " -> paygate.jobs._planted_cycle_a"
    ]


# -- the environment ----------------------------------------------------------------------------

# Settings are read from the environment in one place; ``paygate up`` hands its environment on
# to the processes it starts (they read their settings from it).
READS_ENVIRONMENT = {"paygate.config", "paygate.supervisor"}
ENVIRONMENT = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def environment_access(path: Path) -> list[str]:
    """The lines of ``path`` that touch the process environment through ``os``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    os_names = {"os"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names |= {a.asname for a in node.names if a.name == "os" and a.asname}
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in os_names
            and node.attr in ENVIRONMENT
        ):
            found.append(f"line {node.lineno}: os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found.extend(
                f"line {node.lineno}: from os import {a.name}"
                for a in node.names
                if a.name in ENVIRONMENT
            )
    return found


def environment_readers() -> list[str]:
    return [
        f"{name} reads the environment ({where}): settings come from paygate.config"
        for name, path in modules("paygate", "plugins", "web")
        if name not in READS_ENVIRONMENT
        for where in environment_access(path)
    ]


def test_only_config_reads_the_environment():
    assert environment_readers() == []


@pytest.mark.parametrize(
    "source",
    [
        "import os\nQUEUE = os.environ.get('PAYGATE_QUEUE')\n",
        "def later():\n    import os as system\n    return system.getenv('REDIS_URL')\n",
        "from os import environ\n",
        "import os\nos.putenv('X', '1')\n",
    ],
)
def test_the_environment_checker_catches_a_planted_reader(source):
    with planted({"plugins/policies/_planted_env.py": source}):
        found = environment_readers()
    assert [f for f in found if "_planted_env" in f], found


# -- settings: one table ------------------------------------------------------------------------


def test_every_setting_has_one_variable_one_default_and_is_documented():
    """Each Settings field declares its variable, parser and default once; from_env of an empty
    environment is exactly the dataclass defaults; README or docs/operations.md names every
    variable."""
    variables = [f.metadata["env"] for f in fields(Settings)]
    assert len(variables) == len(set(variables))
    assert Settings.from_env({}) == Settings()
    docs = (ROOT / "README.md").read_text() + (ROOT / "docs" / "operations.md").read_text()
    assert [v for v in variables if f"`{v}`" not in docs] == []


def test_settings_parse_blank_as_default_and_name_the_variable_they_cannot_parse():
    env = {"PORT": " ", "PAYGATE_FRAME_ANCESTORS": "", "PAYGATE_API_URL": "http://x:1/"}
    settings = Settings.from_env(env, PAYGATE_QUEUE="q1")
    assert (settings.port, settings.frame_ancestors) == (8000, ())  # a blank list means none
    assert (settings.api_url, settings.queue_name) == ("http://x:1", "q1")
    assert (
        Settings.from_env({"WEBHOOK_RETRY_INTERVALS_TEST": "true"}).janitor_interval_seconds == 0.25
    )
    with pytest.raises(ValueError, match="PAYGATE_DB_POOL_MAX"):
        Settings.from_env({"PAYGATE_DB_POOL_MAX": "many"})
