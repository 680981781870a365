"""The worker's small HTTP server (``PAYGATE_WORKER_METRICS_PORT``, default 9108; 0: none):
``/metrics`` (Prometheus text), ``/livez`` and ``/readyz``, in a daemon thread next to the
consumer, bound like the web servers (``PAYGATE_BIND``).

``/readyz`` is 200 while this worker consumes and its heartbeat reached Redis within
``PAYGATE_HEARTBEAT_TTL`` (what ``paygate worker-alive --ready`` checks from outside), else 503.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .. import metrics
from ..errors import METRICS_TOKEN_REQUIRED
from ..services import Context, monitoring
from ..services.views import iso

log = logging.getLogger(__name__)


class WorkerState:
    """What ``/readyz`` asks: the consumer runs, the heartbeat reached Redis recently, and
    every helper process runs (``helpers``: None when there are none)."""

    def __init__(self, heartbeat_ttl: float, helpers: Callable[[], bool] | None = None):
        self.heartbeat_ttl = heartbeat_ttl
        self.consuming = False
        self.last_beat: float | None = None  # monotonic
        self.helpers = helpers

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    def heartbeat_fresh(self) -> bool:
        return self.last_beat is not None and time.monotonic() - self.last_beat < self.heartbeat_ttl

    def helpers_running(self) -> bool:
        return self.helpers is None or self.helpers()

    def ready(self) -> bool:
        return self.consuming and self.heartbeat_fresh() and self.helpers_running()


def _json(start_response, status: str, body: dict, headers: list | None = None) -> list[bytes]:
    data = json.dumps(body, separators=(",", ":")).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            *(headers or []),
        ],
    )
    return [data]


class WorkerApp:
    """The WSGI app of the worker's server."""

    def __init__(self, ctx: Context, state: WorkerState):
        self.token = ctx.settings.metrics_token
        self.state = state
        self.collector = metrics.StateCollector(
            {
                "database": lambda: monitoring.database_state(ctx),
                "redis": lambda: monitoring.redis_state(ctx),
                "worker": lambda: {"paygate_worker_ready": [((), float(state.ready()))]},
            }
        )

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self._error(start_response, "405 Method Not Allowed", "BAD_REQUEST_ERROR")
        if path == "/livez":
            return _json(start_response, "200 OK", monitoring.liveness())
        if path == "/readyz":
            return self._readyz(start_response)
        if path == "/metrics":
            if not metrics.token_accepted(self.token, environ.get("HTTP_AUTHORIZATION")):
                return self._error(
                    start_response,
                    "401 Unauthorized",
                    "AUTHENTICATION_ERROR",
                    METRICS_TOKEN_REQUIRED,
                    [("WWW-Authenticate", "Bearer")],
                )
            data = metrics.exposition(self.collector)
            start_response(
                "200 OK",
                [("Content-Type", metrics.CONTENT_TYPE), ("Content-Length", str(len(data)))],
            )
            return [data]
        return self._error(start_response, "404 Not Found", "NOT_FOUND_ERROR")

    def _readyz(self, start_response):
        ready = self.state.ready()
        body = {
            "status": "ready" if ready else "unready",
            "checks": {
                "consumer": "ok" if self.state.consuming else "failed",
                "heartbeat": "ok" if self.state.heartbeat_fresh() else "failed",
                **(
                    {}
                    if self.state.helpers is None
                    else {"helpers": "ok" if self.state.helpers_running() else "failed"}
                ),
            },
            "timestamp": iso(datetime.now(UTC)),
        }
        return _json(start_response, "200 OK" if ready else "503 Service Unavailable", body)

    @staticmethod
    def _error(start_response, status, code, description=None, headers=None):
        body = {"error": {"code": code, "description": description or status[4:]}}
        return _json(start_response, status, body, headers)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:  # scrapes every 15 s: no line each
        pass


def start(ctx: Context, state: WorkerState) -> WSGIServer | None:
    """Serve on ``PAYGATE_BIND``:``PAYGATE_WORKER_METRICS_PORT`` in a daemon thread; None when
    the port is 0, or taken (logged as an error: the worker still settles payments, it is only
    unobserved; the port must be given another value)."""
    port = ctx.settings.worker_metrics_port
    if not port:
        return None
    host = ctx.settings.bind_host
    try:
        server = make_server(
            host, port, WorkerApp(ctx, state), server_class=_Server, handler_class=_QuietHandler
        )
    except OSError as exc:
        log.error(
            "worker metrics server cannot listen on %s:%d (%s): running without /metrics, "
            "/livez and /readyz; set PAYGATE_WORKER_METRICS_PORT to a free port (0: none)",
            host,
            port,
            exc.strerror or exc,
        )
        return None
    threading.Thread(
        target=server.serve_forever, name="paygate-worker-metrics", daemon=True
    ).start()
    log.info("worker metrics on http://%s:%d/metrics", host, port)
    return server
