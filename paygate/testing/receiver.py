"""A real HTTP receiver on 127.0.0.1 for webhook tests: records every request with the moment it
arrived, answers as told (one answer for all, or a script per path), keeps connections alive.

It is a small asyncio HTTP/1.1 server, cheap enough per request to stand in for the merchant in
the benchmark too (``bench/receiver.py`` runs one in its own process). In a test it serves from a
background thread: construct it (or use ``with``), talk to ``url()``, read ``requests``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus


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


# A script for one path: the answers in order (the last one repeats), or a function of the
# request that returns an Answer (called on the receiver's thread: keep it quick).
Script = list[Answer] | Callable[[Received], Answer]


class Receiver:
    """Serves from construction until :meth:`close` (or the end of a ``with`` block).

    Paths without a script get ``Answer(status, delay=delay)``: set ``status`` (a 3xx answers
    with a ``Location``) and ``delay`` to change it for every path. ``clock`` stamps arrivals
    (``time.time`` unless a test injects its own); ``port`` 0 picks a free one.
    """

    def __init__(
        self,
        status: int = 200,
        delay: float = 0.0,
        clock: Callable[[], float] = time.time,
        port: int = 0,
    ) -> None:
        self.status = status
        self.delay = delay
        self.clock = clock
        self.requests: list[Received] = []
        self.scripts: dict[str, Script] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._release = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        # The loop lives on its own thread from the start: the caller's thread may run an event
        # loop of its own (Playwright's sync API does).
        self._listening = asyncio.run_coroutine_threadsafe(self._listen(port), self._loop)
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="paygate-receiver", daemon=True
        )
        self._thread.start()
        self._server = self._listening.result(10)

    @property
    def port(self) -> int:
        port: int = self._server.sockets[0].getsockname()[1]
        return port

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

    def clear(self) -> None:
        """Forget the requests received so far."""
        with self._lock:
            self.requests.clear()

    @staticmethod
    def closed_port() -> int:
        """A local port with nothing listening on it (connections are refused)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            return port

    def serve_forever(self) -> None:
        """Block until the process is stopped (a receiver process of its own, like the bench's)."""
        self._thread.join()

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def _listen(self, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._serve, "127.0.0.1", port, backlog=1024)

    async def _shutdown(self) -> None:
        self._release.set()  # delayed answers go out now
        await asyncio.sleep(0)
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    def _next(self, request: Received) -> Answer:
        script = self.scripts.get(request.path)
        if script is None:
            location = {"Location": self.url("/redirected")} if 300 <= self.status < 400 else {}
            return Answer(self.status, headers=location, delay=self.delay)
        if callable(script):
            return script(request)
        seen = len(self.to(request.path))
        return script[min(seen, len(script)) - 1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        client_port = writer.get_extra_info("peername")[1]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
                method, target, _ = request_line.split(" ", 2)
                headers = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    headers[name.strip()] = value.strip()
                lowered = {name.lower(): value for name, value in headers.items()}
                length = int(lowered.get("content-length") or 0)
                # A sender that dies mid-body delivered nothing: IncompleteReadError ends here.
                body = await reader.readexactly(length) if length else b""
                request = Received(
                    method, target.split("?")[0], headers, body, self.clock(), client_port
                )
                with self._lock:
                    self.requests.append(request)
                answer = self._next(request)
                if answer.delay and not self._release.is_set():
                    try:
                        await asyncio.wait_for(self._release.wait(), answer.delay)
                    except TimeoutError:
                        pass
                writer.write(_response(answer))
                await writer.drain()
                if lowered.get("connection", "").lower() == "close":
                    break
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
            ValueError,
        ):
            pass  # the sender went away or spoke something else: nothing to answer
        finally:
            self._writers.discard(writer)
            writer.close()


def _response(answer: Answer) -> bytes:
    try:
        reason = HTTPStatus(answer.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {answer.status} {reason}"]
    lines += [f"{name}: {value}" for name, value in answer.headers.items()]
    lines.append(f"Content-Length: {len(answer.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + answer.body
