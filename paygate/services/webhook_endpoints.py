"""Several webhook endpoints per merchant: create, list, change, rotate, delete, test.

The merchant's ``webhook_url`` stays the primary endpoint (every event, the merchant's secret,
``/api/v1/webhooks/config``); these are further ones, at most ``MAX_ENDPOINTS`` per merchant,
each with its URL, the events it is subscribed to (empty: every event), its own secret
(``whsec_``, sealed at rest with ``webhook_secrets`` for the endpoint's id, shown in full only
when created or rotated) and an ``enabled`` switch. The outbox writes one delivery per event and
enabled, subscribed endpoint; a delivery whose endpoint was disabled or deleted before it went
out fails without being sent (``webhooks.deliver``). Deleting keeps the row (and so the logs'
endpoint and URL): it is soft.

``PRIMARY_ID`` names the primary endpoint in the list and in ``GET``/``test``; it cannot be
changed here.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ..db import webhook_endpoints as repo
from ..errors import (
    ENDPOINT_DISABLED,
    ENDPOINT_ENABLED_NOT_BOOLEAN,
    ENDPOINT_EVENT_UNKNOWN,
    ENDPOINT_EVENTS_INVALID,
    ENDPOINT_IS_PRIMARY,
    ENDPOINT_LIMIT_REACHED,
    ENDPOINT_UPDATE_EMPTY,
    ENDPOINT_URL_REFUSED,
    ENDPOINT_URL_REQUIRED,
    FIELD_NOT_STRING,
    BadRequest,
    NotFound,
    SecretUnreadable,
)
from ..events import NAMES
from ..netpolicy import webhook_url_problem
from ..types import Merchant, WebhookEndpoint
from . import (
    Context,
    merchants,
    validation,
    views,
    webhook_circuits,
    webhook_secrets,
    webhooks,
)
from .idempotency import CREATED, Token, token_params
from .lookup import found

MAX_ENDPOINTS = 16
PRIMARY_ID = "primary"
DESCRIPTION_MAX = 255
FIELDS = {"url", "events", "description", "enabled"}
KIND = "Webhook endpoint"
CREATE_SCOPE = "webhook_endpoints.create"  # Idempotency-Key scope


def endpoint_id(raw: Any) -> str:
    """An endpoint id (a UUID), or the contract's 404: a malformed id names no endpoint."""
    try:
        return str(uuid.UUID(str(raw)))
    except (ValueError, TypeError):
        raise NotFound.of(KIND) from None


def is_primary(raw: Any) -> bool:
    return raw == PRIMARY_ID


def primary(ctx: Context, merchant: Merchant) -> WebhookEndpoint | None:
    """The merchant's ``webhook_url`` as a read-only endpoint (every event, the merchant's
    secret), or None when it has none."""
    current = merchants.record(ctx, merchant.id)
    if not current.webhook_url:
        return None
    return WebhookEndpoint(
        id=PRIMARY_ID,
        merchant_id=current.id,
        url=current.webhook_url,
        secret_sealed=webhook_secrets.sealed_current(ctx, current),
        previous_secret_until=webhooks.previous_secret_until(current),
        created_at=current.created_at,
        updated_at=current.updated_at,
    )


def list_endpoints(ctx: Context, merchant: Merchant) -> list[WebhookEndpoint]:
    """The primary endpoint first (when the merchant has a ``webhook_url``), then the others,
    oldest first."""
    with ctx.db.connection() as conn:
        others = repo.list_for_merchant(conn, merchant.id)
    first = primary(ctx, merchant)
    return ([first] if first is not None else []) + others


def get(ctx: Context, merchant: Merchant, raw_id: Any) -> WebhookEndpoint:
    if is_primary(raw_id):
        return found(primary(ctx, merchant), KIND)
    with ctx.db.connection() as conn:
        return found(repo.get(conn, endpoint_id(raw_id), merchant.id), KIND)


def create(
    ctx: Context, merchant: Merchant, body: Any, token: Token | None = None
) -> WebhookEndpoint:
    """A new endpoint from ``{url, events?, description?, enabled?}``; the answer carries its
    secret opened, the only time it is shown. Under an Idempotency-Key (``token``) the stored
    answer, which a repeat replays, has the secret masked: a secret is never stored open."""
    body = validation.require_object(body)
    validation.reject_unknown(body, FIELDS)
    if body.get("url") is None:
        raise BadRequest(ENDPOINT_URL_REQUIRED, field="url")
    values = _changes(ctx, body)
    new_id = str(uuid.uuid4())
    secret = merchants.new_webhook_secret()
    with ctx.db.transaction() as conn:
        created = repo.create(
            conn,
            {
                "id": new_id,
                "merchant_id": merchant.id,
                "url": values["url"],
                "events": list(values.get("events", ())),
                "description": values.get("description"),
                "enabled": values.get("enabled", True),
                "secret_sealed": webhook_secrets.seal(ctx, new_id, secret),
            },
            limit=MAX_ENDPOINTS,
        )
        if created is None:
            raise BadRequest(ENDPOINT_LIMIT_REACHED.format(limit=MAX_ENDPOINTS))
        if token is not None:
            stored = {
                **views.webhook_endpoint_view(created, masked(secret)),
                "circuit": webhook_circuits.CLOSED_VIEW,  # as the first answer shows it
            }
            repo.complete_key(conn, merchant.id, token_params(token, CREATED, stored))
    return replace(created, secret=secret)


def update(ctx: Context, merchant: Merchant, raw_id: Any, body: Any) -> WebhookEndpoint:
    """Change any of url, events, description (null clears it), enabled."""
    if is_primary(raw_id):
        raise BadRequest(ENDPOINT_IS_PRIMARY)
    target = endpoint_id(raw_id)
    body = validation.require_object(body)
    validation.reject_unknown(body, FIELDS)
    if not body:
        raise BadRequest(ENDPOINT_UPDATE_EMPTY)
    if "url" in body and body["url"] is None:
        raise BadRequest(ENDPOINT_URL_REQUIRED, field="url")
    changes = _changes(ctx, body)
    with ctx.db.transaction() as conn:
        return found(repo.update(conn, target, merchant.id, changes), KIND)


def rotate_secret(ctx: Context, merchant: Merchant, raw_id: Any) -> WebhookEndpoint:
    """A new secret, shown this once; the replaced one keeps signing (the Standard Webhooks
    ``webhook-signature`` header carries both) for ``PAYGATE_WEBHOOK_SECRET_OVERLAP``, exactly
    like the primary's rotation. A replaced secret that no longer decrypts is dropped."""
    if is_primary(raw_id):
        raise BadRequest(ENDPOINT_IS_PRIMARY)
    target = endpoint_id(raw_id)
    with ctx.db.connection() as conn:
        current = found(repo.get(conn, target, merchant.id), KIND)
    previous: str | None = current.secret_sealed
    try:
        webhook_secrets.open_stored(ctx, target, current.secret_sealed or "")
    except SecretUnreadable:
        previous = None
    secret = merchants.new_webhook_secret()
    sealed = webhook_secrets.seal(ctx, target, secret)
    overlap = ctx.settings.webhook_secret_overlap_seconds
    with ctx.db.transaction() as conn:
        rotated = repo.rotate_secret(conn, target, merchant.id, sealed, previous, overlap)
    return replace(found(rotated, KIND), secret=secret)


def delete(ctx: Context, merchant: Merchant, raw_id: Any) -> None:
    """Soft-delete: nothing more is sent to it (pending deliveries fail at their next attempt
    with ``Webhook endpoint was deleted``); its logs stay listed."""
    if is_primary(raw_id):
        raise BadRequest(ENDPOINT_IS_PRIMARY)
    target = endpoint_id(raw_id)
    with ctx.db.transaction() as conn:
        if not repo.delete(conn, target, merchant.id):
            raise NotFound.of(KIND)


def send_test(ctx: Context, merchant: Merchant, raw_id: Any) -> dict[str, Any]:
    """A ``webhook.test`` to this one endpoint only (the primary: like
    ``POST /api/v1/webhooks/test``). A disabled endpoint is refused, with nothing written."""
    if is_primary(raw_id):
        return {**webhooks.send_test(ctx, merchant), "endpoint_id": None}
    target = endpoint_id(raw_id)
    with ctx.db.connection() as conn:
        endpoint = found(repo.get(conn, target, merchant.id), KIND)
    if not endpoint.enabled:
        raise BadRequest(ENDPOINT_DISABLED)
    # Disabled or deleted meanwhile: the insert writes nothing, and the same refusal follows.
    return webhooks.schedule_test(ctx, merchant.id, target, ENDPOINT_DISABLED)


def masked_secret(ctx: Context, endpoint: WebhookEndpoint) -> str | None:
    """The secret as lists show it: ``whsec_`` and its last four characters (like Stripe's
    dashboard); None when it does not decrypt (rotate it)."""
    owner = endpoint.merchant_id if endpoint.id == PRIMARY_ID else endpoint.id
    if not endpoint.secret_sealed:
        return None
    try:
        secret = webhook_secrets.open_stored(ctx, owner, endpoint.secret_sealed)
    except SecretUnreadable:
        return None
    return masked(secret)


def masked(secret: str) -> str:
    return "whsec_" + "•" * 8 + secret[-4:]


def previous_secret_until(endpoint: WebhookEndpoint) -> datetime | None:
    """When the secret replaced by the last rotation stops signing; None when it no longer
    does."""
    until = endpoint.previous_secret_until
    return until if until is not None and until > datetime.now(UTC) else None


def _changes(ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
    """The validated values of the fields present in ``body``."""
    changes: dict[str, Any] = {}
    if "url" in body:
        changes["url"] = _url(ctx, body["url"])
    if "events" in body:
        changes["events"] = _events(body["events"])
    if "description" in body:
        text = validation.optional_string(body, "description", DESCRIPTION_MAX)
        changes["description"] = (text.strip() or None) if text is not None else None
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise BadRequest(ENDPOINT_ENABLED_NOT_BOOLEAN, field="enabled")
        changes["enabled"] = body["enabled"]
    return changes


def _url(ctx: Context, value: Any) -> str:
    if not isinstance(value, str):
        raise BadRequest(FIELD_NOT_STRING.format(field="url"), field="url")
    url = value.strip()
    if not url:
        raise BadRequest(ENDPOINT_URL_REQUIRED, field="url")
    problem = webhook_url_problem(url, allow_private=ctx.settings.allow_private_webhook_urls)
    if problem:
        raise BadRequest(ENDPOINT_URL_REFUSED.format(problem=problem), field="url")
    return url


def _events(value: Any) -> list[str]:
    """Event names from the catalogue, each once, in the order given (empty: every event)."""
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise BadRequest(ENDPOINT_EVENTS_INVALID, field="events")
    for name in value:
        if name not in NAMES:
            known = ", ".join(NAMES)
            raise BadRequest(ENDPOINT_EVENT_UNKNOWN.format(event=name, known=known), field="events")
    return list(dict.fromkeys(value))
