"""Meta-tests (datasette's idea): the build fails when a hook has no ``test_hook_<name>`` test or
no documented signature in docs/plugins.md, and the checks themselves are shown to catch both."""

from __future__ import annotations

import ast
import inspect
import re
import types
from collections.abc import Callable
from pathlib import Path

import pluggy

from paygate import hookspecs
from paygate.plugins import HOOK_KINDS
from paygate.types import Notifier, Processor

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "plugins.md"
TESTS = ROOT / "tests"
HEADING = re.compile(r"^#+\s+`(\w+)\(([^)]*)\)`\s*$", re.MULTILINE)


def hook_specs(module: types.ModuleType = hookspecs) -> dict[str, Callable]:
    """Every hook spec pluggy would find in ``module``, by name."""
    return {
        name: fn
        for name, fn in vars(module).items()
        if callable(fn) and getattr(fn, "paygate_spec", None) is not None
    }


def signature(name: str, fn: Callable) -> str:
    """``name(arg, arg)``: what docs/plugins.md must show for a hook or an operation."""
    params = [p for p in inspect.signature(fn).parameters if p != "self"]
    return f"{name}({', '.join(params)})"


def collected_test_names(root: Path = TESTS) -> set[str]:
    names = set()
    for path in root.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
    return names


def documented_headings(doc: str) -> set[str]:
    """Signatures documented as headings: ``### `paygate_refund_policy(payment, ...)` ``."""
    return {
        f"{name}({', '.join(a.strip() for a in args.split(',') if a.strip())})"
        for name, args in HEADING.findall(doc)
    }


def untested_hooks(specs: dict[str, Callable], test_names: set[str]) -> list[str]:
    return sorted(name for name in specs if f"test_hook_{name}" not in test_names)


def undocumented_hooks(specs: dict[str, Callable], doc: str) -> list[str]:
    documented = documented_headings(doc)
    return sorted(signature(n, fn) for n, fn in specs.items() if signature(n, fn) not in documented)


# -- the meta-tests ------------------------------------------------------------------------


def test_every_hook_has_a_test_hook_test():
    assert untested_hooks(hook_specs(), collected_test_names()) == []


def test_every_hook_is_documented_with_its_exact_signature():
    assert undocumented_hooks(hook_specs(), DOCS.read_text()) == []


def test_the_docs_document_no_hook_that_does_not_exist():
    hooks = {signature(name, fn) for name, fn in hook_specs().items()}
    documented = {
        sig for sig in documented_headings(DOCS.read_text()) if sig.startswith("paygate_")
    }
    assert documented - hooks == set()


def test_every_processor_and_notifier_operation_is_documented_with_its_signature():
    documented = documented_headings(DOCS.read_text())
    for protocol in (Processor, Notifier):
        for name, fn in vars(protocol).items():
            if callable(fn) and not name.startswith("_"):
                assert signature(name, fn) in documented, f"{protocol.__name__}.{name}"


def test_every_hook_spec_states_its_contract_and_its_kind():
    for name, fn in hook_specs().items():
        assert len(inspect.getdoc(fn) or "") > 200, f"{name} needs a full docstring contract"
        assert name in HOOK_KINDS, f"{name}: say what kind of plugin implements it"


# -- the checks catch what they are for ----------------------------------------------------


def fake_hookspecs() -> types.ModuleType:
    """The real hooks, plus a new undocumented and untested one, plus a changed signature."""
    spec = pluggy.HookspecMarker("paygate")
    module = types.ModuleType("fake_hookspecs")

    @spec
    def paygate_new_hook(payment, merchant):
        """A hook someone added without a test or docs."""

    @spec(firstresult=True)
    def paygate_refund_policy(payment, refund_request, refunded_amount, merchant):
        """The real hook, with an argument the docs do not show yet."""

    module.paygate_new_hook = paygate_new_hook
    module.paygate_refund_policy = paygate_refund_policy
    module.paygate_register_processors = hookspecs.paygate_register_processors
    return module


def test_the_meta_checks_fail_for_an_untested_hook():
    assert untested_hooks(hook_specs(fake_hookspecs()), collected_test_names()) == [
        "paygate_new_hook"
    ]


def test_the_meta_checks_fail_for_an_undocumented_hook_or_a_stale_signature():
    assert undocumented_hooks(hook_specs(fake_hookspecs()), DOCS.read_text()) == [
        "paygate_new_hook(payment, merchant)",
        "paygate_refund_policy(payment, refund_request, refunded_amount, merchant)",
    ]
