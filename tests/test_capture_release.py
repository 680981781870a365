"""Capture and release (issue 16): the captured amount limits refunds (in the service and in the
database), an unknown capture outcome stays pending and a job resolves it, a refused capture
carries the processor's code, an uncaptured authorization can be released, and the processor's
reference reaches the merchant's views (never the public one)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from paygate import ChargeResult, RefundResult
from paygate.config import TEST_MERCHANT_ID
from paygate.db import payment_operations
from paygate.services import merchants, payments, recovery, refunds
from tests.api.helpers import create_order, error_of, pay_upi
from tests.fixtures import AUTH, set_webhook_url
from tests.plugins.helpers import ProvidesProcessors, ScriptedBank


class Authorizer:
    """A processor that authorizes at charge time and captures or releases on request; the
    answers of ``capture``/``release`` are scripted (an Exception instance is raised)."""

    name = "authorizer"
    methods = frozenset({"upi", "card"})
    supports_partial_refund = True
    supports_manual_capture = True

    def __init__(self):
        self.captures: list = [ChargeResult.success(reference="cap_ref")]
        self.releases: list = [ChargeResult.success(reference="rel_ref")]
        self.calls: list[tuple] = []

    @staticmethod
    def _next(script: list):
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def charge(self, request):
        return ChargeResult.success(reference=f"auth_{request.idempotency_key}")

    def sync(self, payment):
        return ChargeResult.success(reference=f"auth_{payment.id}")

    def capture(self, payment, amount, config=None):
        self.calls.append(("capture", payment.id, amount, config))
        return self._next(self.captures)

    def release(self, payment, config):
        self.calls.append(("release", payment.id, config))
        return self._next(self.releases)

    def refund(self, payment, refund):
        return RefundResult.processed(reference=f"auth_rfnd_{refund.id}")


def _use(ctx, processor):
    plugin = ProvidesProcessors(processor)
    ctx.plugins.pm.register(plugin)
    ctx.plugins.reload_registries()
    with ctx.db.connection() as conn:
        conn.execute("UPDATE merchants SET processor = %s", (processor.name,))
    merchants.forget_cached()
    return plugin


@pytest.fixture
def bank(ctx):
    processor = Authorizer()
    plugin = _use(ctx, processor)
    yield processor
    ctx.plugins.pm.unregister(plugin)
    ctx.plugins.reload_registries()


def _settled(ctx, api, amount=50000) -> dict:
    payment = pay_upi(api, create_order(api, amount=amount)["id"], "success@test").json
    assert payments.process(ctx, payment["id"]) == "success"
    return payment


def _capture(api, payment_id, body=None):
    return api.simulate_post(f"/api/v1/payments/{payment_id}/capture", json=body, headers=AUTH)


def _release(api, payment_id, headers=None):
    return api.simulate_post(
        f"/api/v1/payments/{payment_id}/release", headers={**AUTH, **(headers or {})}
    )


def _refund(api, payment_id, amount):
    return api.simulate_post(
        f"/api/v1/payments/{payment_id}/refunds", json={"amount": amount}, headers=AUTH
    )


def _read(api, payment_id) -> dict:
    return api.simulate_get(f"/api/v1/payments/{payment_id}", headers=AUTH).json


def _events(ctx, payment_id) -> list[str]:
    with ctx.db.connection() as conn:
        rows = conn.execute(
            "SELECT event FROM webhook_logs WHERE resource_id = %s ORDER BY created_at",
            (payment_id,),
        ).fetchall()
    return [r["event"] for r in rows]


def _make_due(ctx, payment_id):
    with ctx.db.connection() as conn:
        conn.execute(
            "UPDATE payment_operations SET next_check_at = now(), locked_until = NULL"
            " WHERE id = %s",
            (payment_id,),
        )


# -- capture -------------------------------------------------------------------------------------


def test_a_full_capture_records_the_amount_captured(ctx, api):
    payment = _settled(ctx, api)
    captured = _capture(api, payment["id"])
    assert captured.status_code == 200, captured.text
    body = captured.json
    assert (body["captured"], body["amount_captured"], body["capture_status"]) == (
        True,
        50000,
        "success",
    )
    assert _read(api, payment["id"])["amount_captured"] == 50000


def test_refunds_fit_in_a_partial_capture(ctx, api):
    payment = _settled(ctx, api)
    assert _capture(api, payment["id"], {"amount": 20000}).json["amount_captured"] == 20000
    too_much = _refund(api, payment["id"], 20001)
    assert error_of(too_much) == (
        400,
        "BAD_REQUEST_ERROR",
        "Refund amount exceeds available amount",
    )
    assert _refund(api, payment["id"], 15000).status_code == 201
    assert error_of(_refund(api, payment["id"], 5001))[0] == 400
    assert _refund(api, payment["id"], 5000).status_code == 201
    assert _read(api, payment["id"])["amount_refunded"] == 20000


def test_an_authorization_is_refunded_only_after_a_capture(ctx, api, bank):
    # With manual capture a successful payment holds money but moved none: a refund first
    # would reach the processor and fail there; the API refuses it at once instead.
    payment = _settled(ctx, api)
    early = _refund(api, payment["id"], 1000)
    assert error_of(early)[:2] == (400, "BAD_REQUEST_ERROR")
    assert "not captured" in error_of(early)[2]
    assert _capture(api, payment["id"], {"amount": 20000}).status_code == 200
    assert _refund(api, payment["id"], 1000).status_code == 201


def test_concurrent_refunds_never_exceed_the_captured_amount(ctx, api):
    payment = _settled(ctx, api)
    _capture(api, payment["id"], {"amount": 20000})
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: _refund(api, payment["id"], 6000).status_code, range(8)))
    assert sorted(codes) == [201] * 3 + [400] * 5
    assert _read(api, payment["id"])["amount_refunded"] == 18000


def test_the_database_refuses_refunds_beyond_the_captured_amount(ctx, api):
    payment = _settled(ctx, api)
    _capture(api, payment["id"], {"amount": 20000})
    with pytest.raises(psycopg.errors.CheckViolation, match="payments_refund_within_captured"):
        with ctx.db.connection() as conn:
            conn.execute(
                "UPDATE payments SET amount_refunded = 20001 WHERE id = %s", (payment["id"],)
            )


def test_a_capture_cannot_take_less_than_was_refunded(ctx, api):
    payment = _settled(ctx, api)
    assert _refund(api, payment["id"], 30000).status_code == 201
    assert error_of(_capture(api, payment["id"], {"amount": 29999})) == (
        400,
        "BAD_REQUEST_ERROR",
        "Capture amount is less than the amount already refunded",
    )
    assert _capture(api, payment["id"], {"amount": 30000}).status_code == 200


def test_a_capture_that_raises_stays_pending_and_a_job_resolves_it(ctx, api, bank):
    set_webhook_url(ctx, "http://127.0.0.1:9/hook")
    payment = _settled(ctx, api)
    bank.captures = [RuntimeError("bank connection reset")]
    answer = _capture(api, payment["id"], {"amount": 30000})
    assert answer.status_code == 202, answer.text
    assert (answer.json["captured"], answer.json["capture_status"]) == (False, "pending")
    assert _read(api, payment["id"])["capture_status"] == "pending"
    # Nothing else may move the authorization meanwhile.
    assert error_of(_capture(api, payment["id"]))[0] == 400
    assert error_of(_release(api, payment["id"]))[0] == 400
    assert error_of(_refund(api, payment["id"], 100))[0] == 400
    # Still unknown on the next ask: deferred again.
    _make_due(ctx, payment["id"])
    assert payments.process_operation(ctx, payment["id"]) == "deferred"
    # The janitor finds it when it is due again (a lost task, a crashed worker).
    _make_due(ctx, payment["id"])
    assert payment["id"] in recovery.due_work(ctx, 0.0)["payment_operations"]
    bank.captures = [ChargeResult.success(reference="cap_late")]
    _make_due(ctx, payment["id"])
    assert payments.process_operation(ctx, payment["id"]) == "captured"
    assert payments.process_operation(ctx, payment["id"]) == "skipped"
    read = _read(api, payment["id"])
    assert (read["captured"], read["amount_captured"], read["capture_status"]) == (
        True,
        30000,
        "success",
    )
    # Same idempotency key (the payment) and amount on every ask.
    assert {call[1:3] for call in bank.calls if call[0] == "capture"} == {(payment["id"], 30000)}
    assert _events(ctx, payment["id"]).count("payment.captured") == 1


def test_a_pending_capture_answer_is_resolved_like_a_charge(ctx, api, bank):
    payment = _settled(ctx, api)
    bank.captures = [ChargeResult.pending(retry_after=60)]
    answer = _capture(api, payment["id"])
    assert answer.status_code == 202 and answer.json["capture_status"] == "pending"
    assert payments.process_operation(ctx, payment["id"]) == "skipped"  # not due for 60 s
    bank.captures = [ChargeResult.failed("CAPTURE_FAILED", "Authorization expired")]
    _make_due(ctx, payment["id"])
    assert payments.process_operation(ctx, payment["id"]) == "failed"
    read = _read(api, payment["id"])
    assert (read["captured"], read["capture_status"], read["capture_error_code"]) == (
        False,
        "failed",
        "CAPTURE_FAILED",
    )


def test_a_refused_capture_answers_the_processors_reason_and_is_recorded(ctx, api, bank):
    payment = _settled(ctx, api)
    bank.captures = [ChargeResult.failed("LIMIT_EXCEEDED", "Capture limit reached")]
    refused = _capture(api, payment["id"])
    assert error_of(refused) == (400, "BAD_REQUEST_ERROR", "Capture limit reached")
    assert refused.json["error"]["reason"] == "LIMIT_EXCEEDED"
    read = _read(api, payment["id"])
    assert (read["captured"], read["capture_status"]) == (False, "failed")
    assert (read["capture_error_code"], read["capture_error_description"]) == (
        "LIMIT_EXCEEDED",
        "Capture limit reached",
    )
    # A later capture may be tried again.
    bank.captures = [ChargeResult.success()]
    again = _capture(api, payment["id"], {"amount": 1000})
    assert again.status_code == 200
    assert (again.json["capture_status"], again.json["capture_error_code"]) == ("success", None)


def test_the_processor_gets_the_merchants_config_when_it_asks_for_it(ctx, api, bank):
    payment = _settled(ctx, api)
    _capture(api, payment["id"])
    assert bank.calls[-1][0] == "capture" and bank.calls[-1][3] is not None


# -- release -------------------------------------------------------------------------------------


def test_release_gives_back_the_authorization_with_its_event(ctx, api):
    set_webhook_url(ctx, "http://127.0.0.1:9/hook")
    payment = _settled(ctx, api)
    released = _release(api, payment["id"])
    assert released.status_code == 200, released.text
    assert released.json["released_at"] is not None and released.json["captured"] is False
    assert _read(api, payment["id"])["released_at"] == released.json["released_at"]
    assert _events(ctx, payment["id"])[-1] == "payment.released"
    gone = (400, "BAD_REQUEST_ERROR", "Payment authorization was released")
    assert error_of(_capture(api, payment["id"])) == gone
    assert error_of(_refund(api, payment["id"], 100)) == gone
    assert error_of(_release(api, payment["id"])) == gone


def test_release_rules(ctx, api):
    pending = pay_upi(api, create_order(api)["id"]).json
    assert error_of(_release(api, pending["id"])) == (
        400,
        "BAD_REQUEST_ERROR",
        "Payment not in releasable state",
    )
    captured = _settled(ctx, api)
    _capture(api, captured["id"])
    assert error_of(_release(api, captured["id"]))[2] == "Payment already captured"
    missing = _release(api, "pay_0000000000000000")
    assert error_of(missing) == (404, "NOT_FOUND_ERROR", "Payment not found")
    body = api.simulate_post(
        f"/api/v1/payments/{captured['id']}/release", json={"x": 1}, headers=AUTH
    )
    assert error_of(body)[0] == 400


def test_release_is_refused_when_the_processor_cannot_release(ctx, api):
    plugin = _use(ctx, ScriptedBank())
    try:
        payment = _settled(ctx, api)
        assert error_of(_release(api, payment["id"])) == (
            400,
            "BAD_REQUEST_ERROR",
            "Processor 'scripted' cannot release an authorization",
        )
    finally:
        ctx.plugins.pm.unregister(plugin)
        ctx.plugins.reload_registries()


def test_a_refused_release_answers_the_processors_reason(ctx, api, bank):
    set_webhook_url(ctx, "http://127.0.0.1:9/hook")
    payment = _settled(ctx, api)
    bank.releases = [ChargeResult.failed("RELEASE_FAILED", "Authorization already settled")]
    refused = _release(api, payment["id"])
    assert error_of(refused) == (400, "BAD_REQUEST_ERROR", "Authorization already settled")
    assert refused.json["error"]["reason"] == "RELEASE_FAILED"
    assert _read(api, payment["id"])["released_at"] is None
    assert "payment.released" not in _events(ctx, payment["id"])
    assert _capture(api, payment["id"]).status_code == 200  # still an authorization


def test_an_unknown_release_outcome_is_pending_until_a_job_knows(ctx, api, bank):
    payment = _settled(ctx, api)
    bank.releases = [TimeoutError("bank timed out")]
    answer = _release(api, payment["id"])
    assert answer.status_code == 202 and answer.json["released_at"] is None
    bank.releases = [ChargeResult.success()]
    _make_due(ctx, payment["id"])
    assert payments.process_operation(ctx, payment["id"]) == "released"
    assert _read(api, payment["id"])["released_at"] is not None


def test_release_with_an_idempotency_key_replays_its_answer(ctx, api):
    payment = _settled(ctx, api)
    key = {"Idempotency-Key": "release-once"}
    first = _release(api, payment["id"], key)
    assert first.status_code == 200, first.text
    again = _release(api, payment["id"], key)
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json == first.json


def test_the_operation_row_is_written_before_the_processor_is_asked(ctx, api, bank):
    payment = _settled(ctx, api)
    seen = {}

    def capture(p, amount, config=None):
        with ctx.db.connection() as conn:
            seen["op"] = payment_operations.pending(conn, p.id)
        return ChargeResult.success()

    bank.capture = capture
    assert _capture(api, payment["id"]).status_code == 200
    assert seen["op"]["operation"] == "capture" and seen["op"]["amount"] == 50000


# -- processor references ------------------------------------------------------------------------


def test_processor_reference_on_merchant_views_not_on_the_public_one(ctx, api, bank):
    set_webhook_url(ctx, "http://127.0.0.1:9/hook")
    payment = _settled(ctx, api)
    reference = f"auth_{payment['id']}"
    assert _read(api, payment["id"])["processor_reference"] == reference
    listed = api.simulate_get("/api/v1/payments", headers=AUTH).json["data"]
    assert listed[0]["processor_reference"] == reference
    public = api.simulate_get(f"/api/v1/payments/{payment['id']}/public").json
    assert "processor_reference" not in public
    with ctx.db.connection() as conn:
        success = conn.execute(
            "SELECT payload FROM webhook_logs WHERE resource_id = %s AND event = %s",
            (payment["id"], "payment.success"),
        ).fetchone()["payload"]
    assert success["data"]["payment"]["processor_reference"] == reference
    assert _capture(api, payment["id"]).status_code == 200  # an authorization: capture first
    created = _refund(api, payment["id"], 1000).json
    assert created["processor_reference"] is None
    assert refunds.process(ctx, created["id"]) == "processed"
    read = api.simulate_get(f"/api/v1/refunds/{created['id']}", headers=AUTH).json
    assert read["processor_reference"] == f"auth_rfnd_{created['id']}"
    with ctx.db.connection() as conn:
        processed = conn.execute(
            "SELECT payload FROM webhook_logs WHERE resource_id = %s AND event = %s",
            (created["id"], "refund.processed"),
        ).fetchone()["payload"]
    assert processed["data"]["refund"]["processor_reference"] == f"auth_rfnd_{created['id']}"


def test_a_crash_after_the_intent_loses_nothing(ctx, api, bank):
    """The request died after writing its intent and before recording the answer (the worst
    moment): once the lease runs out the janitor dispatches the row and the job captures."""
    set_webhook_url(ctx, "http://127.0.0.1:9/hook")
    payment = _settled(ctx, api)
    with ctx.db.transaction() as conn:  # what capture() commits before asking
        assert payment_operations.begin(conn, payment["id"], TEST_MERCHANT_ID, "capture", 12000, 30)
    assert _read(api, payment["id"])["capture_status"] == "pending"
    assert recovery.due_work(ctx, 0.0)["payment_operations"] == []  # the request's lease
    with ctx.db.connection() as conn:
        conn.execute(
            "UPDATE payment_operations SET locked_until = now() - interval '1 second',"
            " next_check_at = now() - interval '1 second' WHERE id = %s",
            (payment["id"],),
        )
    assert recovery.due_work(ctx, 0.0)["payment_operations"] == [payment["id"]]
    assert payments.process_operation(ctx, payment["id"]) == "captured"
    assert _read(api, payment["id"])["amount_captured"] == 12000
    assert _events(ctx, payment["id"]).count("payment.captured") == 1


@pytest.mark.parametrize("round_", range(3))
def test_racing_captures_and_releases_move_the_authorization_once(ctx, api, round_):
    """One lock order (the payment row, then its operation): no deadlock, never a 5xx."""
    set_webhook_url(ctx, "http://127.0.0.1:9/hook")
    payment = _settled(ctx, api)

    def act(i):
        return (_capture(api, payment["id"]) if i % 2 else _release(api, payment["id"])).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(act, range(8)))
    assert codes == [200] + [400] * 7
    events = _events(ctx, payment["id"])
    assert events.count("payment.captured") + events.count("payment.released") == 1
