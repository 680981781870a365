"""Security headers of every checkout response: CSP (with the embedding merchants as
``frame-ancestors``: ``'self'`` plus ``PAYGATE_FRAME_ANCESTORS``, whose default is ``* file:`` in
development and nothing in production), ``X-Content-Type-Options``, referrer and permissions
policies, and HSTS in production mode."""

from __future__ import annotations

import re
from collections.abc import Iterable

import falcon

# A CSP source expression as an operator writes it in PAYGATE_FRAME_ANCESTORS: ``*``, a scheme
# (``https:``), or an origin with optional wildcard subdomain and port. Anything else (quotes,
# semicolons, spaces, paths) could smuggle directives into the header, so it is refused.
SOURCE = re.compile(
    r"^(\*|'self'|'none'|[a-z][a-z0-9+.-]*:|"
    r"([a-z][a-z0-9+.-]*://)?(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:(\d{1,5}|\*))?)$",
    re.IGNORECASE,
)


def frame_ancestors(sources: Iterable[str]) -> str:
    """The ``frame-ancestors`` directive: the checkout's own origin plus the merchant sites."""
    values = ["'self'"]
    for source in sources:
        if not SOURCE.match(source):
            raise ValueError(f"PAYGATE_FRAME_ANCESTORS: {source!r} is not a valid CSP source")
        if source == "'none'":
            return "frame-ancestors 'none'"
        if source not in values:
            values.append(source)
    return "frame-ancestors " + " ".join(values)


def content_security_policy(ancestors: Iterable[str]) -> str:
    """Only our own scripts, styles and endpoints; no inline script, no ``eval``."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "frame-src 'none'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            frame_ancestors(ancestors),
        ]
    )


class SecurityHeaders:
    """Falcon middleware adding the security headers to every response, errors included."""

    def __init__(self, ancestors: Iterable[str], strict_transport_security: str | None = None):
        self.headers = {
            "Content-Security-Policy": content_security_policy(ancestors),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Permissions-Policy": "camera=(), microphone=(), geolocation=(), usb=()",
        }
        if strict_transport_security:  # production mode only
            self.headers["Strict-Transport-Security"] = strict_transport_security

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, ok) -> None:
        for name, value in self.headers.items():
            resp.set_header(name, value)
