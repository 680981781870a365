"""Health, probes, metrics, the test merchant, job statistics."""

from __future__ import annotations

from ... import metrics
from ...errors import METRICS_TOKEN_REQUIRED, AuthenticationFailed
from ...services import health, merchants, monitoring, views
from . import Resource, send


class Health(Resource):
    def on_get(self, req, resp):
        healthy, body = health.health(self.ctx)
        send(resp, body, 200 if healthy else 503)


class Livez(Resource):
    """The process answers (asks nothing else: a database outage restarts no pod)."""

    def on_get(self, req, resp):
        send(resp, monitoring.liveness())


class Readyz(Resource):
    """Can serve: 200 while the database answers, else 503 with the same body."""

    def on_get(self, req, resp):
        ready, body = monitoring.readiness(self.ctx)
        send(resp, body, 200 if ready else 503)


class Metrics(Resource):
    """Prometheus text: every process of this server added up, plus the queues' state read now.
    With ``PAYGATE_METRICS_TOKEN`` set, only for ``Authorization: Bearer <token>``."""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.state = metrics.StateCollector(
            {
                "database": lambda: monitoring.database_state(ctx),
                "redis": lambda: monitoring.redis_state(ctx),
            }
        )

    def on_get(self, req, resp):
        if not metrics.token_accepted(self.ctx.settings.metrics_token, req.auth):
            resp.set_header("WWW-Authenticate", "Bearer")
            raise AuthenticationFailed(METRICS_TOKEN_REQUIRED)
        resp.content_type = metrics.CONTENT_TYPE
        resp.data = metrics.exposition(self.state)


class TestMerchant(Resource):
    def on_get(self, req, resp):
        send(resp, views.test_merchant_view(merchants.test_merchant(self.ctx)))


class JobStatus(Resource):
    def on_get(self, req, resp):
        send(resp, health.job_status(self.ctx))
