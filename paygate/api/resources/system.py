"""Health, the test merchant, job statistics."""

from __future__ import annotations

from ...services import health, merchants, views
from . import Resource, send


class Health(Resource):
    def on_get(self, req, resp):
        healthy, body = health.health(self.ctx)
        send(resp, body, 200 if healthy else 503)


class TestMerchant(Resource):
    def on_get(self, req, resp):
        send(resp, views.test_merchant_view(merchants.test_merchant(self.ctx)))


class JobStatus(Resource):
    def on_get(self, req, resp):
        send(resp, health.job_status(self.ctx))
