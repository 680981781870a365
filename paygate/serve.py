"""Running a WSGI app factory under gunicorn (``gthread`` workers), in-process.

The API counts its metrics in Prometheus's multiprocess mode: gunicorn's master makes a private
directory before it forks (``paygate.metrics.use_multiprocess_directory``), every worker process
writes its counts there, ``/metrics`` adds them up, a worker process that exits is marked dead
(``child_exit``) and the directory goes when the server stops (``on_exit``).
"""

from __future__ import annotations

import importlib
import math
import socket
from collections.abc import Callable

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from . import metrics
from .logcontext import JsonFormatter


class GunicornApp(BaseApplication):
    """Gunicorn with options from code; the app is built in each worker after the fork, so
    every worker opens its own database pool."""

    def __init__(self, factory: str, options: dict):
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Callable:
        module, _, name = self.factory.partition(":")
        return getattr(importlib.import_module(module), name)()


class JsonLogger(Logger):
    """gunicorn's own log lines (start, worker boot and exit, errors) as JSON, like ours
    (``PAYGATE_LOG_FORMAT=json``)."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers + self.access_log.handlers:
            handler.setFormatter(JsonFormatter())


def _child_exit(server, worker) -> None:
    metrics.process_exited(worker.pid)


def _on_exit(server) -> None:
    metrics.remove_directory()


def ensure_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise SystemExit(f"paygate: port {port} is already in use") from None


def serve(
    factory: str,
    *,
    host: str,
    port: int,
    workers: int,
    threads: int,
    name: str,
    stop_timeout: float = 25.0,
    log_format: str = "text",
    multiprocess_metrics: bool = False,
) -> None:
    """Serve until SIGTERM or SIGINT: gunicorn then stops accepting, lets the requests in
    flight finish for up to ``stop_timeout`` seconds (``PAYGATE_STOP_TIMEOUT``) and exits.
    ``multiprocess_metrics``: the app serves ``/metrics`` for all of gunicorn's workers."""
    ensure_port_free(host, port)
    options: dict = {}
    if multiprocess_metrics:
        metrics.use_multiprocess_directory(name)
        options.update(child_exit=_child_exit, on_exit=_on_exit)
    if log_format == "json":
        options["logger_class"] = JsonLogger
    GunicornApp(
        factory,
        {
            **options,
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "proc_name": f"paygate-{name}",
            "timeout": 30,
            "graceful_timeout": max(1, math.ceil(stop_timeout)),  # whole seconds
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "limit_request_line": 8190,
        },
    ).run()
