"""Refunds through the API, in-process against real PostgreSQL and Redis: creation rules,
tenancy, reading, and idempotency (processing: test_refunds_processing.py)."""

from __future__ import annotations

import pytest

from paygate import ChargeResult, RefundResult, hookimpl
from paygate.errors import NotFound
from paygate.services import merchants, refunds
from tests.factories import create_payment, paid_payment
from tests.fixtures import AUTH, OTHER_AUTH

REFUND_ID_LENGTH = len("rfnd_") + 16


def refund(api, payment_id: str, body, headers=None):
    return api.simulate_post(
        f"/api/v1/payments/{payment_id}/refunds", json=body, headers={**AUTH, **(headers or {})}
    )


def read_payment(api, payment_id: str) -> dict:
    return api.simulate_get(f"/api/v1/payments/{payment_id}", headers=AUTH).json


def refund_rows(ctx, payment_id: str) -> list[dict]:
    with ctx.db.connection() as conn:
        return conn.execute(
            "SELECT id, amount, status FROM refunds WHERE payment_id = %s ORDER BY created_at",
            (payment_id,),
        ).fetchall()


def assert_bad_request(result, description: str) -> None:
    assert result.status_code == 400, result.text
    assert result.json["error"]["code"] == "BAD_REQUEST_ERROR"
    assert result.json["error"]["description"] == description


# -- creation ---------------------------------------------------------------------------------


def test_full_refund_answers_201_pending_and_marks_the_payment_fully_refunded(ctx, api):
    payment = paid_payment(ctx, api, amount=10000)
    result = refund(api, payment["id"], {"amount": 10000, "reason": "Customer request"})
    assert result.status_code == 201, result.text
    body = result.json
    assert body["id"].startswith("rfnd_") and len(body["id"]) == REFUND_ID_LENGTH
    assert body["id"][5:].isalnum() and body["id"][5:].isascii()
    assert {k: body[k] for k in ("payment_id", "amount", "reason", "status")} == {
        "payment_id": payment["id"],
        "amount": 10000,
        "reason": "Customer request",
        "status": "pending",
    }
    assert body["created_at"].endswith("Z") and body["processed_at"] is None
    assert read_payment(api, payment["id"])["amount_refunded"] == 10000
    assert_bad_request(
        refund(api, payment["id"], {"amount": 1}), "Refund amount exceeds available amount"
    )


def test_partial_refund_leaves_the_rest_available(ctx, api):
    payment = paid_payment(ctx, api, amount=10000)
    result = refund(api, payment["id"], {"amount": 2500})
    assert result.status_code == 201, result.text
    assert result.json["amount"] == 2500 and result.json["reason"] is None
    assert read_payment(api, payment["id"])["amount_refunded"] == 2500
    assert refund(api, payment["id"], {"amount": 7500}).status_code == 201


def test_several_partial_refunds_add_up_to_the_amount_and_not_one_paisa_more(ctx, api):
    payment = paid_payment(ctx, api, amount=10000)
    for amount in (3000, 3000, 3000):
        assert refund(api, payment["id"], {"amount": amount}).status_code == 201
    assert_bad_request(
        refund(api, payment["id"], {"amount": 1001}), "Refund amount exceeds available amount"
    )
    assert refund(api, payment["id"], {"amount": 1000}).status_code == 201
    rows = refund_rows(ctx, payment["id"])
    assert [r["amount"] for r in rows] == [3000, 3000, 3000, 1000]
    assert read_payment(api, payment["id"])["amount_refunded"] == 10000


def test_over_refund_is_rejected_and_records_nothing(ctx, api):
    payment = paid_payment(ctx, api, amount=10000)
    result = refund(api, payment["id"], {"amount": 10001})
    assert_bad_request(result, "Refund amount exceeds available amount")
    assert result.json["error"]["field"] == "amount"
    assert refund_rows(ctx, payment["id"]) == []
    assert read_payment(api, payment["id"])["amount_refunded"] == 0


def test_processed_refunds_still_count_against_the_available_amount(ctx, api):
    payment = paid_payment(ctx, api, amount=10000)
    first = refund(api, payment["id"], {"amount": 6000}).json
    assert refunds.process(ctx, first["id"]) == "processed"
    assert_bad_request(
        refund(api, payment["id"], {"amount": 4001}), "Refund amount exceeds available amount"
    )
    assert refund(api, payment["id"], {"amount": 4000}).status_code == 201


@pytest.mark.parametrize("vpa", ["failure@test", None], ids=["failed", "pending"])
def test_refund_of_a_payment_that_is_not_successful_is_rejected(ctx, api, vpa):
    if vpa is None:  # never processed: still pending
        payment = create_payment(api, 10000)
    else:
        payment = paid_payment(ctx, api, vpa=vpa)
        assert payment["status"] == "failed"
    result = refund(api, payment["id"], {"amount": 100})
    assert_bad_request(result, "Payment not in refundable state")
    assert refund_rows(ctx, payment["id"]) == []


@pytest.mark.parametrize(
    "body, description",
    [
        ({}, "amount is required"),
        ({"amount": 0}, "amount must be at least 1"),
        ({"amount": -5}, "amount must be at least 1"),
        ({"amount": "100"}, "amount must be an integer number of paise"),
        ({"amount": 100.5}, "amount must be an integer number of paise"),
        ({"amount": True}, "amount must be an integer number of paise"),
        ({"amount": 100, "reason": 7}, "reason must be a string"),
        ({"amount": 100, "reason": "x" * 256}, "reason must be at most 255 characters"),
        ({"amount": 100, "speed": "fast"}, "Unknown field: speed"),
        ([100], "Request body must be a JSON object"),
    ],
)
def test_invalid_refund_bodies_are_bad_requests_that_record_nothing(ctx, api, body, description):
    payment = paid_payment(ctx, api)
    assert_bad_request(refund(api, payment["id"], body), description)
    assert refund_rows(ctx, payment["id"]) == []


def test_malformed_json_is_a_bad_request(ctx, api):
    payment = paid_payment(ctx, api)
    result = api.simulate_post(
        f"/api/v1/payments/{payment['id']}/refunds", body=b'{"amount": 1', headers=AUTH
    )
    assert result.status_code == 400 and result.json["error"]["code"] == "BAD_REQUEST_ERROR"


def test_refund_of_an_unknown_payment_is_not_found_even_with_a_bad_body(api):
    for body in ({"amount": 100}, {"amount": "nope"}):
        result = refund(api, "pay_doesnotexist0000", body)
        assert result.status_code == 404
        assert result.json["error"] == {
            "code": "NOT_FOUND_ERROR",
            "description": "Payment not found",
            "request_id": result.headers["Request-Id"],
        }


def test_refund_of_another_merchants_payment_is_not_found(ctx, api, other_merchant):
    payment = paid_payment(ctx, api)
    result = api.simulate_post(
        f"/api/v1/payments/{payment['id']}/refunds", json={"amount": 100}, headers=OTHER_AUTH
    )
    assert result.status_code == 404
    assert result.json["error"]["description"] == "Payment not found"
    assert refund_rows(ctx, payment["id"]) == []


def test_refunds_need_credentials(ctx, api):
    payment = paid_payment(ctx, api)
    result = api.simulate_post(f"/api/v1/payments/{payment['id']}/refunds", json={"amount": 100})
    assert result.status_code == 401
    assert result.json["error"]["code"] == "AUTHENTICATION_ERROR"
    assert api.simulate_get("/api/v1/refunds/rfnd_x").status_code == 401


class FullRefundsOnly:
    """A processor plugin whose processor cannot refund part of a payment."""

    name = "fullonly"
    methods = frozenset({"upi"})
    supports_partial_refund = False
    supports_manual_capture = False

    def charge(self, request):
        return ChargeResult.success()

    def sync(self, payment):
        return ChargeResult.success()

    def capture(self, payment, amount):
        return ChargeResult.success()

    def refund(self, payment, refund):
        return RefundResult.processed()

    @hookimpl
    def paygate_register_processors(self, register):
        register(self)


def test_partial_refund_is_refused_when_the_processor_supports_only_full_refunds(ctx, api):
    plugin = FullRefundsOnly()
    ctx.plugins.pm.register(plugin)
    ctx.plugins.reload_registries()
    with ctx.db.connection() as conn:
        conn.execute("UPDATE merchants SET processor = 'fullonly'")
    merchants.forget_cached()
    try:
        payment = paid_payment(ctx, api, amount=10000)
        assert payment["status"] == "success"
        assert_bad_request(
            refund(api, payment["id"], {"amount": 4000}),
            "Processor 'fullonly' supports full refunds only",
        )
        full = refund(api, payment["id"], {"amount": 10000})
        assert full.status_code == 201
        assert refunds.process(ctx, full.json["id"]) == "processed"
    finally:
        ctx.plugins.pm.unregister(plugin)
        ctx.plugins.reload_registries()


# -- reading ----------------------------------------------------------------------------------


def test_refund_reads_back_with_the_contract_keys(ctx, api):
    payment = paid_payment(ctx, api)
    created = refund(api, payment["id"], {"amount": 500, "reason": "Damaged"}).json
    result = api.simulate_get(f"/api/v1/refunds/{created['id']}", headers=AUTH)
    assert result.status_code == 200
    body = result.json
    contract = ("id", "payment_id", "amount", "reason", "status", "created_at", "processed_at")
    assert {k: body[k] for k in contract} == {k: created[k] for k in contract}


@pytest.mark.parametrize(
    "refund_id", ["rfnd_doesnotexist0000", "x" * 500, "rfnd_%00", "pay_looksright00000"]
)
def test_unknown_refund_id_is_not_found(api, refund_id):
    result = api.simulate_get(f"/api/v1/refunds/{refund_id}", headers=AUTH)
    assert result.status_code == 404
    assert result.json["error"]["code"] == "NOT_FOUND_ERROR"
    assert result.json["error"]["description"] == "Refund not found"


def test_another_merchants_refund_is_not_found(ctx, api, other_merchant):
    payment = paid_payment(ctx, api)
    created = refund(api, payment["id"], {"amount": 500}).json
    result = api.simulate_get(f"/api/v1/refunds/{created['id']}", headers=OTHER_AUTH)
    assert result.status_code == 404
    assert result.json["error"]["description"] == "Refund not found"


def test_list_for_payment_returns_newest_first_and_hides_foreign_payments(
    ctx, api, test_merchant, other_merchant
):
    payment = paid_payment(ctx, api)
    first = refund(api, payment["id"], {"amount": 100}).json
    second = refund(api, payment["id"], {"amount": 200}).json
    listed = refunds.list_for_payment(ctx, test_merchant, payment["id"])
    assert {r.id for r in listed} == {first["id"], second["id"]}
    assert [r.created_at for r in listed] == sorted((r.created_at for r in listed), reverse=True)
    with pytest.raises(NotFound):
        refunds.list_for_payment(ctx, other_merchant, payment["id"])


# -- idempotency ------------------------------------------------------------------------------


def test_idempotency_key_replays_the_first_refund_byte_for_byte(ctx, api):
    payment = paid_payment(ctx, api)
    key = {"Idempotency-Key": "refund-key-1"}
    first = refund(api, payment["id"], {"amount": 700}, key)
    again = refund(api, payment["id"], {"amount": 700}, key)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(refund_rows(ctx, payment["id"])) == 1
    assert read_payment(api, payment["id"])["amount_refunded"] == 700


def test_idempotency_key_reused_with_another_amount_is_refused(ctx, api):
    payment = paid_payment(ctx, api)
    key = {"Idempotency-Key": "refund-key-2"}
    assert refund(api, payment["id"], {"amount": 700}, key).status_code == 201
    mismatch = refund(api, payment["id"], {"amount": 800}, key)
    assert mismatch.status_code == 422
    assert mismatch.json["error"]["description"] == (
        "Idempotency-Key reused with different parameters"
    )
    assert len(refund_rows(ctx, payment["id"])) == 1


def test_a_refused_refund_does_not_burn_its_idempotency_key(ctx, api):
    payment = paid_payment(ctx, api, amount=10000)
    key = {"Idempotency-Key": "refund-key-3"}
    assert refund(api, payment["id"], {"amount": 20000}, key).status_code == 400
    assert refund(api, payment["id"], {"amount": 20000}, key).status_code == 400
    assert refund_rows(ctx, payment["id"]) == []
