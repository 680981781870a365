"""Small plugins and API steps shared by the plugin tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from paygate import ChargeRequest, ChargeResult, Payment, Refund, RefundResult, hookimpl
from tests.factories import create_order, post_payment


@dataclass
class ScriptedBank:
    """A processor whose answers are scripted per call: ``charges``/``syncs`` are lists of
    results (an Exception instance is raised). It counts what it was asked."""

    name: str = "scripted"
    methods: frozenset[str] = frozenset({"upi", "card"})
    supports_partial_refund: bool = True
    supports_manual_capture: bool = False
    charges: list = field(default_factory=lambda: [ChargeResult.success()])
    syncs: list = field(default_factory=lambda: [ChargeResult.success()])
    calls: list[str] = field(default_factory=list)

    def _next(self, script: list):
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def charge(self, request: ChargeRequest) -> ChargeResult:
        self.calls.append(f"charge {request.idempotency_key}")
        return self._next(self.charges)

    def sync(self, payment: Payment) -> ChargeResult:
        self.calls.append(f"sync {payment.id}")
        return self._next(self.syncs)

    def capture(self, payment: Payment, amount: int) -> ChargeResult:
        return ChargeResult.success()

    def refund(self, payment: Payment, refund: Refund) -> RefundResult:
        return RefundResult.processed()


class ProvidesProcessors:
    """A plugin object registering the given processors, as a third-party module would."""

    def __init__(self, *processors):
        self.processors = processors

    @hookimpl
    def paygate_register_processors(self, register):
        for processor in self.processors:
            register(processor)


def create_payment(api, amount: int = 50000, **method):
    """POST /api/v1/payments for a new order (UPI unless ``method`` says otherwise)."""
    return post_payment(api, create_order(api, amount)["id"], method or None)


def fake_distribution(
    root: Path, dist: str, version: str, entry_points: dict[str, str], modules: dict[str, str]
) -> Path:
    """An installed distribution as importlib.metadata finds it: ``<name>.dist-info`` with
    METADATA and entry_points.txt, plus its modules, in ``root`` (put ``root`` on sys.path)."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text("[paygate]\n" + lines)
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)
    return root


TINYBANK = """
from paygate import ChargeResult, RefundResult, hookimpl


class Tinybank:
    name = "tinybank"
    methods = frozenset({"upi"})
    supports_partial_refund = False
    supports_manual_capture = False

    def charge(self, request):
        return ChargeResult.success(reference="tiny_" + request.idempotency_key)

    def sync(self, payment):
        return ChargeResult.success(reference="tiny_" + payment.id)

    def capture(self, payment, amount):
        return ChargeResult.success()

    def refund(self, payment, refund):
        return RefundResult.processed()


@hookimpl
def paygate_register_processors(register):
    register(Tinybank())
"""
