"""``/dashboard/webhooks``: the primary endpoint's settings, the further endpoints, the delivery
logs, a delivery's detail."""

from __future__ import annotations

import secrets
from dataclasses import replace

from paygate.errors import (
    ENDPOINT_FORM_USED,
    Conflict,
    IdempotencyMismatch,
    PaygateError,
    SecretUnreadable,
)
from paygate.events import CATALOGUE
from paygate.services import (
    idempotency,
    merchants,
    views,
    webhook_circuits,
    webhook_endpoints,
    webhooks,
)
from paygate.types import WebhookEndpoint

from .base import Page
from .security import safe_next
from .transactions import page_number, pager

PAGE_SIZE = 20
ACTIONS = ("save", "regenerate", "test")
ENDPOINT_ACTIONS = ("create", "enable", "disable", "delete", "rotate", "test")
EVENT_FIELD = "event:"  # one checkbox per event name: the form keeps one value per field


def refused(resp, exc: PaygateError) -> int:
    """The status a refused form answers with: 429 (and ``Retry-After``) past the webhook test
    and retry limit, else 400."""
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is None:
        return 400
    resp.set_header("Retry-After", str(retry_after))
    return exc.status


class Webhooks(Page):
    def show(
        self,
        req,
        resp,
        *,
        status: int = 200,
        error=None,
        url_value=None,
        endpoint_error=None,
        endpoint_form=None,
        issued: WebhookEndpoint | None = None,
        flash=None,
    ) -> None:
        """The page; ``issued``: an endpoint whose new secret is shown this once (the answer to
        its creation or rotation, never a redirect that would have to carry it)."""
        merchant = self.merchant(req)
        try:
            current = webhooks.get_config(self.ctx, merchant)
        except SecretUnreadable as exc:  # the page stays usable: Regenerate is the way out
            current = replace(merchants.record(self.ctx, merchant.id), webhook_secret=None)
            status, error = 500, error or exc.description
        config = views.webhook_config_view(current)
        circuits = self.circuits(merchant)
        page = page_number(req.get_param("page"))
        logs = webhooks.list_logs(self.ctx, merchant, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        last = pager(page, logs.total, PAGE_SIZE)["last"]
        if page > last and req.method == "GET":
            self.redirect(req, resp, f"/dashboard/webhooks?page={last}")
            return
        self.render(
            req,
            resp,
            "webhooks.html",
            status=status,
            active="webhooks",
            error=error,
            config=config,
            previous_until=webhooks.previous_secret_until(current),
            url_value=(config["webhook_url"] or "") if url_value is None else url_value,
            logs=logs.items,
            pager=pager(page, logs.total, PAGE_SIZE),
            here=req.relative_uri,
            endpoints=self.endpoints(merchant, circuits),
            primary_circuit=circuits.get(
                webhook_endpoints.PRIMARY_ID, webhook_circuits.CLOSED_VIEW
            ),
            max_endpoints=webhook_endpoints.MAX_ENDPOINTS,
            catalogue=CATALOGUE,
            event_field=EVENT_FIELD,
            endpoint_error=endpoint_error,
            endpoint_form=endpoint_form or {"url": "", "description": "", "events": ()},
            issued=issued,
            endpoint_key="dash_" + secrets.token_urlsafe(18),
            **({"flash": flash} if flash else {}),
        )

    def circuits(self, merchant) -> dict[str, dict]:
        """Each endpoint's circuit breaker by endpoint id, with its reopen time as shown."""
        shown = {}
        for key, circuit in webhook_circuits.for_merchant(self.ctx, merchant.id).items():
            retry = circuit["retry_at"]
            text = retry.replace("T", " ").removesuffix("Z")[:19] + " UTC" if retry else None
            shown[key] = {**circuit, "retry_text": text}
        return shown

    def endpoints(self, merchant, circuits: dict[str, dict]) -> list[dict]:
        """The further endpoints (the primary is the form above), each with its masked secret,
        during a rotation's overlap when the previous secret stops signing, and its breaker."""
        return [
            {
                "endpoint": endpoint,
                "secret": webhook_endpoints.masked_secret(self.ctx, endpoint),
                "previous_until": webhook_endpoints.previous_secret_until(endpoint),
                "circuit": circuits.get(endpoint.id, webhook_circuits.CLOSED_VIEW),
            }
            for endpoint in webhook_endpoints.list_endpoints(self.ctx, merchant)
            if endpoint.id != webhook_endpoints.PRIMARY_ID
        ]

    def on_get(self, req, resp):
        self.show(req, resp)

    def on_post(self, req, resp):
        """One form, three buttons (``action``): save the URL, rotate the secret, send a test."""
        merchant = self.merchant(req)
        form = self.form(req)
        action = form.get("action", "save")
        url = form.get("webhook_url", "").strip()
        if action not in ACTIONS:
            action = "save"
        try:
            if action == "regenerate":
                updated = webhooks.update_config(self.ctx, merchant, {"regenerate_secret": True})
                until = webhooks.previous_secret_until(updated)
                message = "New webhook secret generated. Deliveries are signed with it from now on"
                if until is not None:
                    message += (
                        f"; until {until:%Y-%m-%d %H:%M} UTC the Standard Webhooks header also "
                        "carries a signature with the previous secret. Update your server "
                        "before then."
                    )
                else:
                    message += ": update your server."
            elif action == "test":
                saved = webhooks.get_config(self.ctx, merchant).webhook_url or ""
                if url and url != saved:  # test what the form shows, not an older URL
                    webhooks.update_config(self.ctx, merchant, {"webhook_url": url})
                sent = webhooks.send_test(self.ctx, merchant)
                message = f"Test event sent ({sent['event']}); it appears in the logs below."
                if url and url != saved:
                    message = "Webhook URL saved. " + message
            else:
                saved = webhooks.update_config(self.ctx, merchant, {"webhook_url": url or None})
                message = "Webhook URL saved." if saved.webhook_url else "Webhook URL removed."
        except PaygateError as exc:
            status = refused(resp, exc)
            self.show(req, resp, status=status, error=exc.description, url_value=url)
            return
        self.redirect(req, resp, "/dashboard/webhooks", message)


class Endpoints(Webhooks):
    """``POST /dashboard/webhooks/endpoints``: add an endpoint (``action=create``), or one
    action on the endpoint ``endpoint_id``: enable, disable, delete, rotate (its secret), test.
    A new secret is shown on the page this answer renders, once."""

    def on_get(self, req, resp):
        self.redirect(req, resp, "/dashboard/webhooks")

    def on_post(self, req, resp):
        merchant = self.merchant(req)
        form = self.form(req)
        action = form.get("action", "")
        target = form.get("endpoint_id", "")
        events = [name for name, _ in CATALOGUE if form.get(EVENT_FIELD + name)]
        typed = {
            "url": form.get("url", "").strip(),
            "description": form.get("description", ""),
            "events": events,
        }
        issued = None
        try:
            if action == "create":
                issued = self.create(merchant, form, typed)
                if issued is None:  # the same form sent again (a reload): nothing new
                    self.redirect(req, resp, "/dashboard/webhooks", ENDPOINT_FORM_USED, "info")
                    return
                message = "Endpoint added. Copy its signing secret now: it is shown only this once."
            elif action in ("enable", "disable"):
                body = {"enabled": action == "enable"}
                webhook_endpoints.update(self.ctx, merchant, target, body)
                message = "Endpoint enabled." if action == "enable" else "Endpoint disabled."
            elif action == "delete":
                webhook_endpoints.delete(self.ctx, merchant, target)
                message = "Endpoint deleted. Its past deliveries stay in the logs below."
            elif action == "rotate":
                issued = webhook_endpoints.rotate_secret(self.ctx, merchant, target)
                message = "New signing secret generated. Copy it now: it is shown only this once."
            elif action == "test":
                webhook_endpoints.send_test(self.ctx, merchant, target)
                message = "Test event sent to the endpoint; it appears in the logs below."
            else:
                self.redirect(req, resp, "/dashboard/webhooks")
                return
        except PaygateError as exc:
            form_values = typed if action == "create" else None
            status = refused(resp, exc)
            self.show(
                req, resp, status=status, endpoint_error=exc.description, endpoint_form=form_values
            )
            return
        if issued is not None:
            self.show(req, resp, issued=issued, flash={"kind": "success", "text": message})
            return
        self.redirect(req, resp, "/dashboard/webhooks", message)

    def create(self, merchant, form, typed) -> WebhookEndpoint | None:
        """The endpoint, created once per add form (its ``idempotency_key``): a form sent again
        (a reload of this answer) creates nothing and answers None."""
        key = form.get("idempotency_key", "")[:100] or "dash_" + secrets.token_urlsafe(18)
        made: list[WebhookEndpoint] = []

        def create(token):
            made.append(webhook_endpoints.create(self.ctx, merchant, typed, token))
            return views.webhook_endpoint_view(made[0], made[0].secret)

        try:
            answer = idempotency.run(
                self.ctx, merchant.id, webhook_endpoints.CREATE_SCOPE, key, typed, create
            )
        except (IdempotencyMismatch, Conflict):
            return None
        return None if answer.replayed else made[0]


class Delivery(Page):
    """One delivery: what was sent, every attempt and what the server answered."""

    missing = ("Webhook delivery", "webhooks")

    def on_get(self, req, resp, log_id):
        log = webhooks.detail(self.ctx, self.merchant(req), log_id)
        self.render(req, resp, "delivery.html", active="webhooks", log=log)


class Retry(Page):
    def on_post(self, req, resp, log_id):
        back = safe_next(self.form(req).get("back")) if self.form(req).get("back") else None
        back = back if back and back.startswith("/dashboard/webhooks") else "/dashboard/webhooks"
        try:
            webhooks.retry(self.ctx, self.merchant(req), log_id)
        except PaygateError as exc:
            self.redirect(req, resp, back, exc.description, "error")
            return
        self.redirect(req, resp, back, "Retry scheduled: the delivery starts again from attempt 1.")
