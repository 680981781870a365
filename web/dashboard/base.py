"""What every dashboard page shares: the resource base class and the static files."""

from __future__ import annotations

import mimetypes
from typing import Any

import falcon

from paygate.services import Context, health, monitoring
from paygate.types import Merchant

from . import render

STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


class Page:
    """A dashboard resource. Pages need a signed-in merchant unless ``signed_in = False``."""

    signed_in = True
    static = False
    # (what, section) for the 404 page when a service raises NotFound: "<what> not found",
    # with a way back to /dashboard/<section>. None: the generic error page.
    missing: tuple[str, str] | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "on_get") and "on_head" not in cls.__dict__:
            cls.on_head = cls.on_get  # uptime checks; Falcon sends no body for HEAD

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def render(self, req, resp, template: str, *, status: int = 200, **values: Any) -> None:
        render.render(self.ctx, req, resp, template, status=status, **values)

    def not_found(self, req, resp) -> bool:
        """Answer the page's own 404 (see ``missing``); False when it has none."""
        if self.missing is None:
            return False
        what, section = self.missing
        back = f"/dashboard/{section}"
        self.render(req, resp, "not_found.html", status=404, active=section, what=what, back=back)
        return True

    def redirect(self, req, resp, location: str, text: str | None = None, kind: str = "success"):
        render.redirect(self.ctx, req, resp, location, text, kind)

    @staticmethod
    def merchant(req) -> Merchant:
        return req.context.merchant

    @staticmethod
    def form(req) -> dict[str, str]:
        return req.context.form


class StaticFiles:
    """``/static/{name}``: the stylesheet, the script and the icon, cached for a year (their
    URLs carry a content hash, see ``render.static_version``)."""

    signed_in = False
    static = True

    def __init__(self, ctx: Context):
        self.files = {path.name: path for path in render.STATIC.iterdir() if path.is_file()}

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        path = self.files.get(name)
        if path is None:
            raise falcon.HTTPNotFound()
        resp.content_type = (
            STATIC_TYPES.get(path.suffix)
            or mimetypes.guess_type(path.name)[0]
            or "application/octet-stream"
        )
        resp.cache_control = ["public", "max-age=31536000", "immutable"]
        resp.data = path.read_bytes()

    on_head = on_get


class Health:
    """``/health``: the API's health answer (same body, 503 only while PostgreSQL is
    unreachable), for the dashboard's own probes (deploy/kubernetes). No session, no cookie."""

    signed_in = False
    static = True

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        healthy, body = health.health(self.ctx)
        resp.media = body
        resp.status = falcon.HTTP_200 if healthy else falcon.HTTP_503
        resp.set_header("Cache-Control", "no-store")


class Livez(Health):
    """``/livez``: the process answers (nothing else is asked). No session, no cookie."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = monitoring.liveness()
        resp.set_header("Cache-Control", "no-store")


class Readyz(Health):
    """``/readyz``: the API's readiness answer (503 only while PostgreSQL is unreachable)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        ready, body = monitoring.readiness(self.ctx)
        resp.media = body
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        resp.set_header("Cache-Control", "no-store")
