"""The one way the tests make orders and payments, with the defaults every test shares.

``client`` is whatever the test talks to: the in-process API (a ``falcon.testing.TestClient``),
a real gateway (anything with a ``url``, like ``tests.fixtures.Gateway``) or a base URL. Requests
carry the test merchant's credentials unless ``headers`` says otherwise (``{}`` sends none).
``service_order``/``service_payment`` go through the services instead of HTTP, for tests of
what sits behind the API (the dashboard, the checkout page).
"""

from __future__ import annotations

from typing import Any

import requests

from tests.fixtures import AUTH

AMOUNT = 50000
UPI = {"method": "upi", "vpa": "user@paytm"}


def post(client, path: str, body: Any, headers: dict | None = None):
    """POST ``body`` as JSON; the client's own answer (``.status_code``, ``.text``, JSON via
    :func:`json_of`)."""
    headers = AUTH if headers is None else headers
    if hasattr(client, "simulate_post"):
        return client.simulate_post(path, json=body, headers=headers)
    base = client if isinstance(client, str) else client.url
    return requests.post(base + path, json=body, headers=headers, timeout=10)


def get(client, path: str, headers: dict | None = None):
    headers = AUTH if headers is None else headers
    if hasattr(client, "simulate_get"):
        return client.simulate_get(path, headers=headers)
    base = client if isinstance(client, str) else client.url
    return requests.get(base + path, headers=headers, timeout=10)


def json_of(answer) -> Any:
    """The JSON body of a falcon.testing result or a requests response."""
    return answer.json() if callable(answer.json) else answer.json


def create_order(client, amount: int = AMOUNT, headers: dict | None = None, **extra) -> dict:
    """POST /api/v1/orders; the order (201 asserted)."""
    answer = post(client, "/api/v1/orders", {"amount": amount, **extra}, headers)
    assert answer.status_code == 201, answer.text
    return json_of(answer)


def post_payment(
    client,
    order_id: str,
    method: dict | None = None,
    headers: dict | None = None,
    path: str = "/api/v1/payments",
):
    """POST a payment for ``order_id`` (UPI unless ``method`` says otherwise); the raw answer,
    for tests of what the API says to it."""
    return post(client, path, {"order_id": order_id, **(method or UPI)}, headers)


def create_payment(
    client,
    amount: int = AMOUNT,
    method: dict | None = None,
    headers: dict | None = None,
    order_id: str | None = None,
) -> dict:
    """A payment (201 asserted) for ``order_id`` or for a new order of ``amount``."""
    if order_id is None:
        order_id = create_order(client, amount, headers)["id"]
    answer = post_payment(client, order_id, method, headers)
    assert answer.status_code == 201, answer.text
    return json_of(answer)


def paid_payment(ctx, client, amount: int = 10000, vpa: str = "user@paytm") -> dict:
    """A payment the worker's code path has settled in-process (``success`` unless ``vpa``
    says otherwise), as the API now shows it."""
    from paygate.services import payments

    payment = create_payment(client, amount, {"method": "upi", "vpa": vpa})
    payments.process(ctx, payment["id"])
    return json_of(get(client, f"/api/v1/payments/{payment['id']}"))


def service_order(ctx, merchant, amount: int = AMOUNT) -> dict:
    """An order made through the services (no HTTP); its view."""
    from paygate.services import orders, views

    return views.order_view(orders.create(ctx, merchant, {"amount": amount}))


def service_payment(
    ctx, merchant, amount: int = AMOUNT, vpa: str = "success@test", settle: bool = True
) -> dict:
    """An order and a UPI payment through the services, settled by the processor when
    ``settle`` (``success@test`` succeeds, ``failure@test`` fails); the payment's view."""
    from paygate.services import payments, views

    order = service_order(ctx, merchant, amount)
    payment = payments.create(ctx, merchant, {"order_id": order["id"], "method": "upi", "vpa": vpa})
    if settle:
        payments.process(ctx, payment.id)
    return views.payment_view(payments.get(ctx, merchant, payment.id))
