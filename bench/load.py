"""Load generators: wrk (Debian's, C + LuaJIT) for the throughput runs, a bounded Python
client for counted batches or when wrk is missing, and an asyncio client for the burst (B7).

All POST ``/api/v1/payments`` for pre-created orders, cycling through them (several payments
per order are allowed), and count every answer that is not 201.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

AUTH = {"X-Api-Key": "key_test_abc123", "X-Api-Secret": "secret_test_xyz789"}
VPA = "bench@okaxis"

WRK_SCRIPT = r"""
local orders = {%(orders)s}
local headers = {["Content-Type"] = "application/json", ["X-Api-Key"] = "%(key)s",
                 ["X-Api-Secret"] = "%(secret)s"}
local threads = {}
counter = 0
offset = 0
bad = 0
function setup(thread)
  thread:set("offset", #threads * 7919)
  table.insert(threads, thread)
end
function request()
  counter = counter + 1
  local order = orders[(counter + offset) %% #orders + 1]
  return wrk.format("POST", "/api/v1/payments", headers,
    '{"order_id":"' .. order .. '","method":"upi","vpa":"%(vpa)s"}')
end
function response(status, headers, body)
  if status ~= 201 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local not_created = 0
  for _, thread in ipairs(threads) do not_created = not_created + thread:get("bad") end
  io.write(string.format(
    'WRK_RESULT {"requests":%%d,"duration_us":%%d,"not_created":%%d,"connect_errors":%%d,' ..
    '"read_errors":%%d,"write_errors":%%d,"timeouts":%%d,"p50_us":%%d,"p90_us":%%d,' ..
    '"p99_us":%%d,"max_us":%%d}\n',
    summary.requests, summary.duration, not_created, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass
class LoadResult:
    requests: int
    seconds: float
    not_created: int
    errors: int
    p50_ms: float
    p99_ms: float
    generator: str
    extra: dict = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(url: str, orders: list[str], clients: int, seconds: float) -> LoadResult:
    script = WRK_SCRIPT % {
        "orders": ",".join(f'"{o}"' for o in orders),
        "key": AUTH["X-Api-Key"],
        "secret": AUTH["X-Api-Secret"],
        "vpa": VPA,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
        path = fh.name
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t",
                "2",
                "-c",
                str(clients),
                "-d",
                f"{seconds:g}s",
                "--timeout",
                "10s",
                "-s",
                path,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
    finally:
        Path(path).unlink(missing_ok=True)
    line = next(ln for ln in out.splitlines() if ln.startswith("WRK_RESULT "))
    raw = json.loads(line[len("WRK_RESULT ") :])
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return LoadResult(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        not_created=raw["not_created"],
        errors=errors,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        generator="wrk",
        extra=raw,
    )


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0-100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.headers.update({**AUTH, "Content-Type": "application/json"})
    return s


def payment_body(order_id: str) -> bytes:
    return json.dumps({"order_id": order_id, "method": "upi", "vpa": VPA}).encode()


def run_python(
    url: str,
    orders: list[str],
    clients: int,
    *,
    seconds: float | None = None,
    count: int | None = None,
) -> tuple[LoadResult, list[str]]:
    """``clients`` threads with keep-alive sessions, for ``seconds`` or until ``count``
    payments were sent. Returns the result and the ids of the payments created."""
    lock = threading.Lock()
    latencies: list[float] = []
    created: list[str] = []
    state = {"sent": 0, "bad": 0, "errors": 0}
    deadline = time.monotonic() + seconds if seconds else None

    def take() -> int | None:
        with lock:
            if count is not None and state["sent"] >= count:
                return None
            if deadline is not None and time.monotonic() >= deadline:
                return None
            state["sent"] += 1
            return state["sent"]

    def client() -> None:
        s = session()
        while (n := take()) is not None:
            started = time.monotonic()
            try:
                answer = s.post(
                    url + "/api/v1/payments", data=payment_body(orders[n % len(orders)]), timeout=30
                )
            except requests.RequestException:
                with lock:
                    state["errors"] += 1
                continue
            elapsed = time.monotonic() - started
            with lock:
                latencies.append(elapsed)
                if answer.status_code == 201:
                    created.append(answer.json()["id"])
                else:
                    state["bad"] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = _result(latencies, time.monotonic() - started, state, "python")
    return result, created


def _result(
    latencies: list[float], elapsed: float, state: dict, generator: str, extra: dict | None = None
) -> LoadResult:
    """A client's answers as a LoadResult (``state``: its ``bad`` and ``errors`` counts)."""
    return LoadResult(
        requests=len(latencies),
        seconds=elapsed,
        not_created=state["bad"],
        errors=state["errors"],
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        generator=generator,
        extra=extra or {},
    )


def run_async(
    url: str, orders: list[str], clients: int, count: int, timeout: float = 30.0
) -> tuple[LoadResult, list[str]]:
    """``count`` creates from ``clients`` keep-alive HTTP/1.1 connections in one asyncio loop
    (a light client: it takes little of the cores it shares with the gateway). Returns the
    result, with ``extra["started_at"]``, the CLOCK_MONOTONIC moment the first create was
    sent, and the ids of the payments created."""
    return asyncio.run(_run_async(url, orders, clients, count, timeout))


async def _run_async(
    url: str, orders: list[str], clients: int, count: int, timeout: float
) -> tuple[LoadResult, list[str]]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"POST /api/v1/payments HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nX-Api-Key: {AUTH['X-Api-Key']}\r\n"
        f"X-Api-Secret: {AUTH['X-Api-Secret']}\r\n"
    ).encode()
    latencies: list[float] = []
    created: list[str] = []
    state = {"next": 0, "bad": 0, "errors": 0, "first": 0.0}

    async def post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes):
        writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        headers = dict(
            (k.strip().lower(), v.strip()) for k, _, v in (ln.partition(b":") for ln in lines if ln)
        )
        payload = await reader.readexactly(int(headers.get(b"content-length", b"0")))
        closing = headers.get(b"connection", b"").lower() == b"close"
        return int(status_line.split()[1]), payload, closing

    async def client() -> None:
        reader = writer = None
        while state["next"] < count:
            n = state["next"]
            state["next"] += 1
            body = payment_body(orders[n % len(orders)])
            started = time.monotonic()
            state["first"] = state["first"] or started
            try:
                if writer is None or reader.at_eof():
                    if writer is not None:
                        writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                status, payload, closing = await asyncio.wait_for(
                    post(reader, writer, body), timeout
                )
            except (
                TimeoutError,
                OSError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                ValueError,
            ):
                state["errors"] += 1
                if writer is not None:
                    writer.close()
                writer = None
                continue
            latencies.append(time.monotonic() - started)
            if status == 201:
                created.append(json.loads(payload)["id"])
            else:
                state["bad"] += 1
            if closing:
                writer.close()
                writer = None
        if writer is not None:
            writer.close()

    began = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    result = _result(
        latencies,
        time.monotonic() - began,
        state,
        "asyncio",
        {"started_at": state["first"] or began, "sent": state["next"]},
    )
    return result, created
