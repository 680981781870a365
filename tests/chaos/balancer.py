"""A small TCP load balancer for the rolling-restart test: what a Kubernetes Service does.

It listens on one port and hands every new client connection to the next backend in its
rotation (round robin), then copies bytes both ways until either side is done. Like a Service
with a readiness probe, a backend can be taken out of rotation (no new connections go to it)
and put back; the balancer counts the connections each backend still has open, so whoever
restarts a backend can wait for them to finish before stopping it.

It works on connections, not requests (layer 4, like kube-proxy): a client that keeps a
connection alive stays on its backend. The rolling-restart load therefore sends each request
on a connection of its own (``Connection: close``), so "no open connection" means "no request
in flight".
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter

CHUNK = 65536


class Balancer:
    def __init__(self, port: int, backends: list[int], host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.rotation: list[int] = list(backends)
        self.open: Counter = Counter()  # backend port -> connections open through it
        self.served: Counter = Counter()  # backend port -> connections handed to it
        self.refused: list[str] = []  # connections the balancer could not hand to a backend
        self._next = 0
        self._lock = threading.Condition()
        self._closing = threading.Event()
        self._listener = socket.create_server((host, port), backlog=256, reuse_port=False)
        self._thread = threading.Thread(target=self._accept, name="balancer", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Balancer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (Linux)
        except OSError:
            pass
        self._listener.close()
        self._thread.join(5)

    # -- rotation ----------------------------------------------------------------------------

    def remove(self, backend: int) -> None:
        """Out of rotation: no new connection goes to ``backend`` from now on."""
        with self._lock:
            self.rotation.remove(backend)

    def add(self, backend: int) -> None:
        with self._lock:
            if backend not in self.rotation:
                self.rotation.append(backend)

    def wait_idle(self, backend: int, timeout: float) -> float:
        """Seconds until every connection through ``backend`` is closed; fails on timeout."""
        started = time.monotonic()
        with self._lock:
            if not self._lock.wait_for(lambda: self.open[backend] == 0, timeout):
                raise AssertionError(f"{self.open[backend]} connections still open to {backend}")
        return time.monotonic() - started

    def _pick(self) -> int | None:
        with self._lock:
            if not self.rotation:
                return None
            backend = self.rotation[self._next % len(self.rotation)]
            self._next += 1
            # Counted before the connection is even made: a backend leaving the rotation now
            # is waited for until this connection is done.
            self.open[backend] += 1
            self.served[backend] += 1
            return backend

    def _done(self, backend: int) -> None:
        with self._lock:
            self.open[backend] -= 1
            self._lock.notify_all()

    # -- traffic -----------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        backend = self._pick()
        if backend is None:
            self.refused.append("no backend in rotation")
            client.close()
            return
        try:
            try:
                upstream = socket.create_connection((self.host, backend), timeout=5)
            except OSError as exc:
                self.refused.append(f"backend {backend}: {exc!r}")
                client.close()
                return
            upstream.settimeout(None)
            back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
            back.start()
            _pump(client, upstream)
            back.join()
            upstream.close()
            client.close()
        finally:
            self._done(backend)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy ``source`` to ``sink`` until ``source`` ends, then end ``sink``'s sending side."""
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    try:
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass
