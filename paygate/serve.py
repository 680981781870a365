"""Running a WSGI app factory under gunicorn (``gthread`` workers), in-process."""

from __future__ import annotations

import importlib
import math
import socket
from collections.abc import Callable

from gunicorn.app.base import BaseApplication


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
) -> None:
    """Serve until SIGTERM or SIGINT: gunicorn then stops accepting, lets the requests in
    flight finish for up to ``stop_timeout`` seconds (``PAYGATE_STOP_TIMEOUT``) and exits."""
    ensure_port_free(host, port)
    GunicornApp(
        factory,
        {
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
