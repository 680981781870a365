"""A real HTTP receiver on 127.0.0.1 for webhook tests: records every request with the moment it
arrived, answers as told (one answer for all, or a script per path), keeps connections alive."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    method: str
    path: str  # without the query string
    headers: dict[str, str]
    body: bytes
    at: float = 0.0  # the receiver's clock on arrival
    client_port: int = 0  # the same port twice: the sender kept the connection open


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering; cut short when the receiver closes


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A sender killed mid-request drops its connection: expected in tests, not news."""


# A script for one path: the answers in order (the last one repeats), or a function of the
# request that returns an Answer.
Script = list[Answer] | Callable[[Received], Answer]


class Receiver:
    """Serves from construction until :meth:`close` (or the end of a ``with`` block).

    Paths without a script get ``Answer(status, delay=delay)``: set ``status`` (a 3xx answers
    with a ``Location``) and ``delay`` to change it for every path. ``clock`` stamps arrivals
    (``time.time`` unless a test injects its own).
    """

    def __init__(
        self, status: int = 200, delay: float = 0.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.status = status
        self.delay = delay
        self.clock = clock
        self.requests: list[Received] = []
        self.scripts: dict[str, Script] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="paygate-receiver",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/hooks", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def answer(self, path: str, *answers: Answer | int) -> None:
        """Answer requests to ``path`` with these, in order (the last one repeats)."""
        self.scripts[path] = [a if isinstance(a, Answer) else Answer(a) for a in answers]

    def answer_with(self, path: str, fn: Callable[[Received], Answer]) -> None:
        self.scripts[path] = fn

    def to(self, path: str) -> list[Received]:
        """The requests to ``path`` so far, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until ``path`` has had ``count`` requests; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.to(path)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"{path}: {len(self.to(path))} requests, expected {count}")

    @staticmethod
    def closed_port() -> int:
        """A local port with nothing listening on it (connections are refused)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _next(self, request: Received) -> Answer:
        script = self.scripts.get(request.path)
        if script is None:
            location = {"Location": self.url("/redirected")} if 300 <= self.status < 400 else {}
            return Answer(self.status, headers=location, delay=self.delay)
        if callable(script):
            return script(request)
        seen = len(self.to(request.path))
        return script[min(seen, len(script)) - 1]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a merchant's server would allow

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if len(body) < length:  # the sender died mid-request: nothing was delivered
                    self.close_connection = True
                    return
                request = Received(
                    self.command,
                    self.path.split("?")[0],
                    dict(self.headers.items()),
                    body,
                    receiver.clock(),
                    self.client_address[1],
                )
                with receiver._lock:
                    receiver.requests.append(request)
                answer = receiver._next(request)
                if answer.delay:
                    receiver._release.wait(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                try:
                    self.wfile.write(answer.body)
                except OSError:  # the client gave up (a timeout test): nothing to tell
                    pass

            do_POST = do_GET = do_PUT = _answer

            def log_message(self, format: str, *args) -> None:  # keep test output quiet
                return

        return Handler
