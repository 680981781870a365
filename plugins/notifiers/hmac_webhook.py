"""The ``webhook`` notifier: HTTP POST of the stored body, signed two ways.

- ``X-Webhook-Signature``: lowercase hex HMAC-SHA256 of the body, keyed with the UTF-8 bytes of
  the merchant's webhook secret (the compatible signature).
- Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64>``)
  whenever the secret is a valid Standard Webhooks secret (``whsec_`` + base64 of >= 24 bytes),
  so any Standard Webhooks library verifies it.

Redirects are not followed (a redirect is a failed attempt). Each thread keeps its own HTTP
session, so deliveries reuse keep-alive connections.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading

import requests

from paygate import Delivery, DeliveryResult, __version__, hookimpl

USER_AGENT = f"Paygate-Webhooks/{__version__}"
RESPONSE_LIMIT = 4096


def compatible_signature(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def standard_webhooks_key(secret: str) -> bytes | None:
    """The signing key of a Standard Webhooks secret, or None if ``secret`` is not one."""
    if not secret.startswith("whsec_"):
        return None
    try:
        key = base64.b64decode(secret[len("whsec_") :], validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) >= 24 else None


def standard_signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(delivery: Delivery) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Signature": compatible_signature(delivery.body, delivery.secret),
        "X-Webhook-Event": delivery.event,
        "X-Webhook-Attempt": str(delivery.attempt),
    }
    key = standard_webhooks_key(delivery.secret)
    if key is not None:
        headers["webhook-id"] = delivery.id
        headers["webhook-timestamp"] = str(delivery.timestamp)
        headers["webhook-signature"] = standard_signature(
            key, delivery.id, delivery.timestamp, delivery.body
        )
    return headers


class HmacWebhookNotifier:
    name = "webhook"

    def __init__(self) -> None:
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxies from the environment for merchant URLs
            self._local.session = session
        return session

    def deliver(self, delivery: Delivery) -> DeliveryResult:
        try:
            response = self._session().post(
                delivery.url,
                data=delivery.body,
                headers=signed_headers(delivery),
                timeout=delivery.timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            return DeliveryResult(ok=False, error="timeout")
        except requests.RequestException as exc:
            return DeliveryResult(ok=False, error=f"connection error: {exc.__class__.__name__}")
        try:
            text = response.raw.read(RESPONSE_LIMIT, decode_content=True)
        except Exception:
            text = b""
        finally:
            response.close()
        body = text.decode("utf-8", errors="replace")
        return DeliveryResult(
            ok=200 <= response.status_code < 300, status_code=response.status_code, body=body
        )


@hookimpl
def paygate_register_notifiers(register):
    register(HmacWebhookNotifier())
