"""/api/v1/processors/{name}/callbacks: a PSP's notifications. No merchant credentials: the
processor verifies its PSP's signature over the raw body (``services.callbacks``)."""

from __future__ import annotations

from ...services import callbacks, limits
from ..middleware import read_body
from . import Resource, send


class Callbacks(Resource):
    def on_post(self, req, resp, name):
        body = read_body(req, self.ctx.settings.max_body_bytes)
        client = limits.client_ip(self.ctx, req.remote_addr, req.get_header("X-Forwarded-For"))
        send(resp, callbacks.receive(self.ctx, name, body, dict(req.headers), client))
