"""Tenancy: every id-bearing merchant route answers 404 for another merchant's object, exactly as
for one that does not exist, while the owner gets the object. The matrix is computed from
``paygate.api.app.ROUTES``, so a new id-bearing route fails here until it is covered."""

from __future__ import annotations

import re

import pytest

from paygate.api.app import ROUTES
from paygate.services import payments
from tests.api.helpers import create_order, error_of, pay_upi
from tests.fixtures import AUTH, OTHER_AUTH, OTHER_MERCHANT_ID, set_webhook_url

METHODS = ("get", "post", "put", "patch", "delete")
# What each call sends besides the id (a valid request for the owner).
BODIES = {
    ("POST", "/api/v1/payments/{payment_id}/capture"): {"amount": 100},
    ("POST", "/api/v1/payments/{payment_id}/refunds"): {"amount": 100},
    ("PATCH", "/api/v1/webhooks/endpoints/{endpoint_id}"): {"description": "mine"},
}
# The checkout page's reads take no credentials: an id is all they need, by design.
PUBLIC = {"/api/v1/orders/{order_id}/public", "/api/v1/payments/{payment_id}/public"}


def id_bearing_routes() -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, resource in ROUTES
        if "{" in path and getattr(resource, "auth", False)
        for method in METHODS
        if callable(getattr(resource, f"on_{method}", None))
    ]


@pytest.fixture
def theirs(ctx, api, other_merchant) -> dict[str, str]:
    """One object of every kind, owned by the other merchant (ids by path parameter name)."""
    set_webhook_url(ctx, "http://127.0.0.1:9/hook", OTHER_MERCHANT_ID)
    order = create_order(api, headers=OTHER_AUTH)
    payment = pay_upi(api, order["id"], "success@test", headers=OTHER_AUTH).json
    payments.process(ctx, payment["id"])
    refund = api.simulate_post(
        f"/api/v1/payments/{payment['id']}/refunds", json={"amount": 100}, headers=OTHER_AUTH
    )
    assert refund.status_code == 201, refund.text
    logs = api.simulate_get("/api/v1/webhooks", headers=OTHER_AUTH).json["data"]
    assert logs, "the other merchant has webhook logs"
    endpoint = api.simulate_post(
        "/api/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/other"}, headers=OTHER_AUTH
    )
    assert endpoint.status_code == 201, endpoint.text
    return {
        "order_id": order["id"],
        "payment_id": payment["id"],
        "refund_id": refund.json["id"],
        "webhook_id": logs[0]["id"],
        "endpoint_id": endpoint.json["id"],
    }


def test_the_matrix_covers_the_id_bearing_routes():
    routes = id_bearing_routes()
    assert ("GET", "/api/v1/orders/{order_id}") in routes
    assert ("POST", "/api/v1/payments/{payment_id}/capture") in routes
    assert not any(path in PUBLIC for _, path in routes)


@pytest.mark.parametrize(("method", "path"), id_bearing_routes())
def test_another_merchants_object_is_not_found(ctx, api, theirs, method, path):
    names = re.findall(r"\{(\w+)\}", path)
    assert set(names) <= set(theirs), f"add an object for {names} to the tenancy fixture"
    url = path.format(**theirs)
    body = BODIES.get((method, path))
    intruder = api.simulate_request(method, url, json=body, headers=AUTH)
    status, code, description = error_of(intruder)
    assert (status, code) == (404, "NOT_FOUND_ERROR"), intruder.text
    # The same words as for an id that never existed: nothing tells the two apart.
    missing = api.simulate_request(
        method, path.format(**{n: "x" + theirs[n][1:] for n in names}), json=body, headers=AUTH
    )
    assert error_of(missing)[1:] == (code, description)
    # And the owner can do it: the 404 is about ownership, not a broken request.
    owner = api.simulate_request(method, url, json=body, headers=OTHER_AUTH)
    assert owner.status_code < 300, owner.text


def test_paying_or_listing_another_merchants_order_finds_nothing(api, theirs):
    body = {"order_id": theirs["order_id"], "method": "upi", "vpa": "a@b"}
    paid = api.simulate_post("/api/v1/payments", json=body, headers=AUTH)
    assert error_of(paid) == (404, "NOT_FOUND_ERROR", "Order not found")
    listed = api.simulate_get(
        "/api/v1/payments", params={"order_id": theirs["order_id"]}, headers=AUTH
    )
    assert listed.json["data"] == [] and listed.json["total"] == 0
    for path in ("/api/v1/orders", "/api/v1/payments", "/api/v1/webhooks"):
        assert api.simulate_get(path, headers=AUTH).json["total"] == 0
