"""POST /api/v1/processors/{name}/callbacks (issue 16): verified outcomes applied through the
worker's guarded transitions; duplicates, reordering, late and forged callbacks change nothing;
every callback recorded and shown on the dashboard's payment page."""

from __future__ import annotations

import pytest

from paygate import ChargeResult
from paygate.config import TEST_MERCHANT_ID
from paygate.services import callbacks, merchants, payments
from paygate.testing import register_plugin
from tests.factories import create_order, get, post
from tests.fixtures import AUTH
from tests.plugins.helpers import ProvidesProcessors, ScriptedBank
from tests.v2bank import VaultBank, callback_body, sign

CHALLENGE = "https://acs.vaultbank.example/challenge/1"


@pytest.fixture
def bank(ctx):
    bank = VaultBank(charges=[ChargeResult.pending(retry_after=600)])
    with register_plugin(ctx, ProvidesProcessors(bank)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, bank.name)
        yield bank


def pending_payment(ctx, api) -> str:
    order = create_order(api)
    answer = post(api, "/api/v1/payments", {"order_id": order["id"], "method": "upi", "vpa": "a@b"})
    assert answer.status_code == 201, answer.text
    assert payments.process(ctx, answer.json["id"]) == "deferred"
    return answer.json["id"]


def send(api, body: bytes, signature: str | None = None, processor: str = "vaultbank"):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Vaultbank-Signature"] = signature
    return api.simulate_post(
        f"/api/v1/processors/{processor}/callbacks", body=body, headers=headers
    )


def signed(api, **fields):
    body = callback_body(**fields)
    return send(api, body, sign(body))


def state(ctx, payment_id: str) -> dict:
    with ctx.db.connection() as conn:
        return conn.execute(
            "SELECT status, error_code, processor_reference, next_action_url, updated_at, "
            "(SELECT count(*) FROM webhook_logs WHERE resource_id = %(id)s) AS events "
            "FROM payments WHERE id = %(id)s",
            {"id": payment_id},
        ).fetchone()


def recorded(ctx) -> list[dict]:
    with ctx.db.connection() as conn:
        return conn.execute("SELECT * FROM processor_callbacks ORDER BY received_at, id").fetchall()


def test_a_verified_success_settles_the_payment_once(ctx, api, bank):
    payment_id = pending_payment(ctx, api)
    answer = signed(api, payment_id=payment_id, event_id="ev_1", status="success", reference="r1")
    assert answer.status_code == 200, answer.text
    assert answer.json == {"received": True, "applied": True}
    after = state(ctx, payment_id)
    assert after["status"] == "success" and after["processor_reference"] == "r1"
    assert get(api, f"/api/v1/payments/{payment_id}").json["status"] == "success"
    # The worker's later look changes nothing either.
    assert payments.process(ctx, payment_id) == "skipped"

    # Duplicate of the same event: recorded once, nothing changes.
    again = signed(api, payment_id=payment_id, event_id="ev_1", status="success", reference="r1")
    assert again.json == {"received": True, "applied": False}
    # Reordered: a pending (with a next action) after the success changes nothing.
    late_pending = signed(
        api, payment_id=payment_id, event_id="ev_0", status="pending", url=CHALLENGE
    )
    assert late_pending.json == {"received": True, "applied": False}
    # Late failure after success: a final outcome never flips.
    late_fail = signed(
        api, payment_id=payment_id, event_id="ev_2", status="failed", code="CARD_DECLINED"
    )
    assert late_fail.json == {"received": True, "applied": False}
    assert state(ctx, payment_id) == after
    rows = recorded(ctx)
    assert [(r["event_id"], r["verified"], r["outcome"], r["applied"]) for r in rows] == [
        ("ev_1", True, "success", True),
        ("ev_0", True, "pending", False),
        ("ev_2", True, "failed", False),
    ]
    assert rows[2]["error_code"] == "CARD_DECLINED"
    assert all(
        r["payment_id"] == payment_id and str(r["merchant_id"]) == TEST_MERCHANT_ID for r in rows
    )


def test_a_verified_failure_fails_the_payment_with_the_processors_code(ctx, api, bank):
    payment_id = pending_payment(ctx, api)
    answer = signed(
        api,
        payment_id=payment_id,
        event_id="ev_f",
        status="failed",
        code="AUTHENTICATION_FAILED",
        description="3-D Secure authentication failed",
    )
    assert answer.json == {"received": True, "applied": True}
    view = get(api, f"/api/v1/payments/{payment_id}").json
    assert view["status"] == "failed" and view["error_code"] == "AUTHENTICATION_FAILED"
    assert view["error_description"] == "3-D Secure authentication failed"


def test_a_pending_callback_with_a_next_action_updates_only_the_next_action(ctx, api, bank):
    payment_id = pending_payment(ctx, api)
    before = state(ctx, payment_id)
    answer = signed(api, payment_id=payment_id, event_id="ev_p", status="pending", url=CHALLENGE)
    assert answer.json == {"received": True, "applied": True}
    after = state(ctx, payment_id)
    assert after["status"] == "pending" and after["next_action_url"] == CHALLENGE
    assert after["events"] == before["events"]
    view = get(api, f"/api/v1/payments/{payment_id}").json
    assert view["next_action"] == {"type": "redirect", "url": CHALLENGE}
    # The same action again changes nothing; a plain pending neither.
    again = signed(api, payment_id=payment_id, event_id="ev_p2", status="pending", url=CHALLENGE)
    assert again.json["applied"] is False
    assert signed(api, payment_id=payment_id, event_id="ev_p3", status="pending").json == {
        "received": True,
        "applied": False,
    }
    # Then the success: settled, next action gone.
    assert signed(api, payment_id=payment_id, event_id="ev_s", status="success").json["applied"]
    assert "next_action" not in get(api, f"/api/v1/payments/{payment_id}").json


def test_forged_callbacks_are_refused_recorded_and_change_nothing(ctx, api, bank):
    payment_id = pending_payment(ctx, api)
    before = state(ctx, payment_id)
    body = callback_body(payment_id=payment_id, event_id="ev_x", status="success")
    for signature in (None, "0" * 64, sign(body, "wrong-secret")):
        answer = send(api, body, signature)
        assert answer.status_code == 400, answer.text
        assert answer.json["error"]["code"] == "BAD_REQUEST_ERROR"
        assert answer.json["error"]["description"] == "Callback could not be verified"
    assert send(api, b"not json", "x").status_code == 400  # callback_target raised
    unknown = callback_body(payment_id="pay_nosuchpayment00", event_id="ev_y", status="success")
    assert send(api, unknown, sign(unknown)).status_code == 400
    assert state(ctx, payment_id) == before
    rows = recorded(ctx)
    assert [(r["verified"], r["applied"], r["error_code"]) for r in rows] == [
        (False, False, "CALLBACK_NOT_VERIFIED")
    ] * 3 + [(False, False, "CALLBACK_UNREADABLE"), (False, False, "CALLBACK_UNKNOWN_TARGET")]
    # A forged callback cannot take a genuine event's id first: the genuine one still applies.
    genuine = send(api, body, sign(body))
    assert genuine.json == {"received": True, "applied": True}
    assert state(ctx, payment_id)["status"] == "success"


def test_a_callback_about_another_processors_payment_is_refused(ctx, api, bank):
    merchants.set_processor(ctx, TEST_MERCHANT_ID, "test")
    order = create_order(api)
    payment_id = post(
        api, "/api/v1/payments", {"order_id": order["id"], "method": "upi", "vpa": "a@b"}
    ).json["id"]
    answer = signed(api, payment_id=payment_id, event_id="ev_o", status="success")
    assert answer.status_code == 400
    assert state(ctx, payment_id)["status"] == "pending"


def test_unknown_processors_and_processors_without_callbacks_are_404(ctx, api, bank):
    answer = send(api, b"{}", processor="nosuchbank")
    assert answer.status_code == 404
    assert answer.json["error"]["description"] == "Processor 'nosuchbank' not found"
    v1 = ScriptedBank()  # a version 1 processor (the built-in test processor takes callbacks)
    with register_plugin(ctx, ProvidesProcessors(v1)):
        answer = send(api, b"{}", processor=v1.name)
    assert answer.status_code == 404
    assert answer.json["error"]["description"] == "Processor 'scripted' does not take callbacks"
    assert recorded(ctx) == []


def test_a_callback_body_over_the_limit_is_413(make_ctx):
    import falcon.testing

    from paygate.api.app import create_app

    ctx = make_ctx(PAYGATE_MAX_BODY_BYTES="1024")
    api = falcon.testing.TestClient(create_app(ctx))
    with register_plugin(ctx, ProvidesProcessors(VaultBank())):
        assert send(api, b"x" * 2048).status_code == 413


def test_refused_callbacks_past_the_limit_get_429_and_are_not_recorded(make_ctx):
    import falcon.testing

    from paygate.api.app import create_app

    ctx = make_ctx(PAYGATE_LIMIT_CALLBACK_REFUSALS="3/60")
    api = falcon.testing.TestClient(create_app(ctx))
    bank = VaultBank(charges=[ChargeResult.pending(retry_after=600)])
    with register_plugin(ctx, ProvidesProcessors(bank)):
        merchants.set_processor(ctx, TEST_MERCHANT_ID, bank.name)
        payment_id = pending_payment(ctx, api)
        body = callback_body(payment_id=payment_id, event_id="ev_limit", status="success")
        statuses = [send(api, body, "0" * 64).status_code for _ in range(3)]
        over = send(api, body, "0" * 64)
        assert statuses == [400, 400, 400]
        assert over.status_code == 429 and over.json["error"]["code"] == "RATE_LIMITED"
        assert int(over.headers["Retry-After"]) > 0
        assert len(recorded(ctx)) == 3  # the refused one past the limit left nothing
        # A verified callback never counts: the PSP's own notification still applies.
        assert send(api, body, sign(body)).json == {"received": True, "applied": True}
        merchants.set_processor(ctx, TEST_MERCHANT_ID, "test")


def test_refund_callbacks_finish_the_refund_once(ctx, api, bank):
    bank.charges = [ChargeResult.success()]
    order = create_order(api, 10000)
    payment_id = post(
        api, "/api/v1/payments", {"order_id": order["id"], "method": "upi", "vpa": "a@b"}
    ).json["id"]
    assert payments.process(ctx, payment_id) == "success"
    refund = api.simulate_post(
        f"/api/v1/payments/{payment_id}/refunds", json={"amount": 4000}, headers=AUTH
    ).json
    answer = signed(api, refund_id=refund["id"], event_id="ev_r1", status="success", reference="rr")
    assert answer.json == {"received": True, "applied": True}
    assert get(api, f"/api/v1/refunds/{refund['id']}").json["status"] == "processed"
    late = signed(api, refund_id=refund["id"], event_id="ev_r2", status="failed")
    assert late.json == {"received": True, "applied": False}
    assert get(api, f"/api/v1/refunds/{refund['id']}").json["status"] == "processed"
    timeline = callbacks.for_payment(ctx, payment_id)
    assert [(c.refund_id, c.outcome, c.applied) for c in timeline] == [
        (refund["id"], "success", True),
        (refund["id"], "failed", False),
    ]


def test_recorded_callbacks_are_in_the_dashboards_payment_timeline(ctx, api, bank):
    from paygate.web.dashboard.app import create_app
    from tests.dashboard_client import DashboardClient, by_test_id

    bank.charges = [ChargeResult.action_required(CHALLENGE, retry_after=600)]
    payment_id = pending_payment(ctx, api)
    client = DashboardClient(create_app(ctx))
    client.login()
    page = client.get(f"/dashboard/transactions/{payment_id}").text
    assert CHALLENGE in by_test_id(page)["payment-next-action"][0].text
    forged = callback_body(payment_id=payment_id, event_id="ev_forged", status="success")
    assert send(api, forged, "bad").status_code == 400
    signed(api, payment_id=payment_id, event_id="ev_ok", status="success", reference="vb_77")
    signed(api, payment_id=payment_id, event_id="ev_late", status="failed", code="CARD_DECLINED")
    page = client.get(f"/dashboard/transactions/{payment_id}").text
    lines = [e.text for e in by_test_id(page)["timeline-callback"]]
    assert len(lines) == 3
    assert "Processor callback (payment) refused" in lines[0]
    assert "CALLBACK_NOT_VERIFIED" in lines[0] and "event ev_forged" in lines[0]
    assert "Processor callback (payment): success, applied" in lines[1]
    assert "reference vb_77" in lines[1]
    assert "Processor callback (payment): failed, no change" in lines[2]
    assert "CARD_DECLINED" in lines[2]
    assert "payment-next-action" not in by_test_id(page)


def test_concurrent_redeliveries_of_one_event_are_recorded_and_applied_once(ctx, api, bank):
    from concurrent.futures import ThreadPoolExecutor

    payment_id = pending_payment(ctx, api)
    body = callback_body(payment_id=payment_id, event_id="ev_race", status="success")
    headers = {"X-Vaultbank-Signature": sign(body)}
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: callbacks.receive(ctx, "vaultbank", body, headers), range(8))
        )
    assert sorted(a["applied"] for a in answers) == [False] * 7 + [True]
    assert len(recorded(ctx)) == 1 and recorded(ctx)[0]["applied"]
    assert state(ctx, payment_id)["status"] == "success"
