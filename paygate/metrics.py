"""Every Prometheus metric Paygate exports, declared once: name, type, labels and meaning.

Two kinds (docs/operations.md, "Metrics"):

- **Counters and histograms** the code moves as work happens (requests, payments, processor
  calls, deliveries, janitor rescues): in-memory ``inc``/``observe`` only, never a query. They
  live in ``REGISTRY``, this module's own registry (nothing of the client's global one).
- **State read at scrape time** (queue depth, the oldest due job's age, circuits by state,
  workers alive): ``StateCollector`` asks its sources when Prometheus scrapes, each bounded by a
  statement timeout; a source that fails gives ``paygate_metrics_source_up{source} 0`` and the
  scrape still succeeds.

gunicorn runs several worker processes behind one port, so the API counts in Prometheus's
multiprocess mode (``use_multiprocess_directory``: one private directory per server, each
process writes its own memory-mapped file, a scrape adds them all up). Labels are bounded by
design: a route template (never a raw path), a method, a status, a processor name, an outcome;
never a merchant, payment or endpoint id, and never anything secret.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client import values as _values
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from .config import set_process_environment

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
REGISTRY = CollectorRegistry(auto_describe=True)

# Seconds: a request or a processor call, from a few milliseconds to a timeout.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A route that matched nothing (404s of any path): one label value, whatever was asked.
UNMATCHED_ROUTE = "unmatched"

HTTP_REQUEST_SECONDS = Histogram(
    "paygate_http_request_duration_seconds",
    "API requests by route template, method and status code, with their latency.",
    ("route", "method", "status"),
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
PAYMENTS = Counter(
    "paygate_payments",
    "Payments by processor and outcome: created (accepted by the API), success, failed.",
    ("processor", "outcome"),
    registry=REGISTRY,
)
REFUNDS = Counter(
    "paygate_refunds",
    "Refunds by processor and outcome: created, processed, failed.",
    ("processor", "outcome"),
    registry=REGISTRY,
)
PROCESSOR_CALL_SECONDS = Histogram(
    "paygate_processor_call_duration_seconds",
    "Calls to a processor plugin by processor, operation (tokenize, charge, sync, capture, "
    "release, refund) and result (ok: it answered; error: it raised).",
    ("processor", "operation", "result"),
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "paygate_webhook_deliveries",
    "Webhook delivery jobs by outcome: delivered, retrying (failed, another attempt is "
    "scheduled), failed (out of attempts), deferred (held back by the endpoint's breaker or "
    "concurrency cap), abandoned (no URL any more), skipped (not due: nothing done).",
    ("outcome",),
    registry=REGISTRY,
)
WEBHOOK_DELIVERY_SECONDS = Histogram(
    "paygate_webhook_delivery_duration_seconds",
    "Webhook delivery attempts (the HTTP POST to the merchant) by result (ok, error).",
    ("result",),
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
WEBHOOK_CIRCUIT_TRANSITIONS = Counter(
    "paygate_webhook_circuit_transitions",
    "Webhook endpoint circuit breakers changing state: opened, reopened (a probe failed), closed.",
    ("change",),
    registry=REGISTRY,
)
JANITOR_RESCUES = Counter(
    "paygate_janitor_rescues",
    "Jobs the janitor dispatched again because the queue may have lost them, by kind "
    "(payments, refunds, payment_operations, webhook_logs).",
    ("kind",),
    registry=REGISTRY,
)

# The outcomes of PAYMENTS and REFUNDS (``created`` by the API, then the final status).
PAYMENT_OUTCOMES = ("created", "success", "failed")
REFUND_OUTCOMES = ("created", "processed", "failed")
# The changes a circuit breaker reports (paygate/services/webhook_circuits.py).
CIRCUIT_CHANGES = ("opened", "reopened", "closed")


def prepare_process(at_zero: Mapping[Counter, Iterable[tuple[str, ...]]]) -> None:
    """Once a process knows how it counts (after ``use_multiprocess_directory`` in gunicorn):
    no ``<name>_created`` series (the client's creation timestamps, which read like "payments
    created"), and every counter's known label sets exported at 0 from the start, so a rate or
    ``increase()`` sees the first event of a new process (a series born at 1 shows no increase)."""
    disable_created_metrics()
    for counter, label_sets in at_zero.items():
        for labels in label_sets:
            counter.labels(*labels)


# Scrape-time state: name -> (help, labels). Sources give samples for these names only.
STATE_GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "paygate_jobs_pending": (
        "Pending jobs in the record (PostgreSQL) by kind and state: due (waiting for a worker "
        "now), running (a worker holds its lease) or scheduled (a retry or a check set for "
        "later).",
        ("kind", "state"),
    ),
    "paygate_jobs_oldest_due_age_seconds": (
        "Seconds since the oldest due, unfinished job of each kind fell due (0: none due).",
        ("kind",),
    ),
    "paygate_webhook_circuits": (
        "Webhook endpoint circuit breakers by state (an endpoint that never failed has none).",
        ("state",),
    ),
    "paygate_queue_length": (
        "Tasks waiting in the Redis queues (payments and refunds; webhooks).",
        ("queue",),
    ),
    "paygate_workers_alive": (
        "Worker processes whose heartbeat in Redis is fresh.",
        (),
    ),
    "paygate_worker_ready": (
        "1 while this worker's consumer runs and its heartbeat is fresh (worker /metrics only).",
        (),
    ),
}
SOURCE_UP = "paygate_metrics_source_up"
SOURCE_UP_HELP = "1 when the scrape could read the source (database, redis), else 0."

# What a source answers: metric name -> [(label values, value)].
Samples = Mapping[str, Iterable[tuple[tuple[str, ...], float]]]


class StateCollector:
    """Gauges read from ``sources`` (name -> function returning ``Samples``) at scrape time.
    A source that raises is reported down; the others still answer."""

    def __init__(self, sources: Mapping[str, Callable[[], Samples]]):
        self.sources = dict(sources)
        self._failing: set[str] = set()

    def describe(self):  # nothing asked at registration: the sources are read at scrape only
        return []

    def collect(self):
        families = {
            name: GaugeMetricFamily(name, text, labels=list(labels))
            for name, (text, labels) in STATE_GAUGES.items()
        }
        up = GaugeMetricFamily(SOURCE_UP, SOURCE_UP_HELP, labels=["source"])
        for source, read in self.sources.items():
            try:
                samples = read()
            except Exception as exc:  # never fail the scrape: say the source is down
                up.add_metric([source], 0.0)
                if source not in self._failing:
                    self._failing.add(source)
                    log.warning("metrics source %s unreadable (%s)", source, type(exc).__name__)
                continue
            self._failing.discard(source)
            up.add_metric([source], 1.0)
            for name, values in samples.items():
                for labels, value in values:
                    families[name].add_metric(list(labels), float(value))
        yield from (f for f in families.values() if f.samples)
        yield up


# -- multiprocess mode (gunicorn) -----------------------------------------------------------

_directory: str | None = None


# ``paygate-<server>-metrics-<pid of the process that made it>-<random>``
_DIRECTORY_NAME = re.compile(r"^paygate-[a-z]+-metrics-(\d+)-")


def use_multiprocess_directory(name: str) -> str:
    """Count in multiprocess mode from now on, in a new private directory (mode 0700, under
    the temporary directory) for the server ``name``: call it in the gunicorn master (or the
    worker with helpers) before it starts the other processes, so each writes its own file
    there. Returns the directory. Directories left by servers killed before they could remove
    theirs (``kill -9``) are removed first."""
    global _directory
    remove_abandoned_directories()
    directory = tempfile.mkdtemp(prefix=f"paygate-{name}-metrics-{os.getpid()}-")
    set_process_environment("PROMETHEUS_MULTIPROC_DIR", directory)  # the client reads it there
    _values.ValueClass = _values.MultiProcessValue()
    _directory = directory
    return directory


def remove_abandoned_directories(parent: str | None = None) -> list[str]:
    """Remove this user's multiprocess directories whose maker is no longer running; the
    paths removed."""
    parent = parent or tempfile.gettempdir()
    removed = []
    for entry in os.scandir(parent):
        match = _DIRECTORY_NAME.match(entry.name)
        try:
            if not match or not entry.is_dir(follow_symlinks=False):
                continue
            if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            os.kill(int(match.group(1)), 0)  # its maker still runs (or another user's pid)
        except ProcessLookupError:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
        except OSError:
            continue
    return removed


def process_exited(pid: int) -> None:
    """gunicorn's ``child_exit``: a worker process ended (its counts stay in the sums)."""
    if _directory is not None:
        mark_process_dead(pid, _directory)


def remove_directory() -> None:
    """gunicorn's ``on_exit``: the server stops; its counts go with it."""
    if _directory is not None:
        shutil.rmtree(_directory, ignore_errors=True)


def exposition(state: StateCollector | None = None) -> bytes:
    """The Prometheus text of every metric: this process's (or, in multiprocess mode, all the
    server's processes' added up) and ``state`` read now."""
    if _directory is not None:
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry, path=_directory)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    if state is not None:
        scraped = CollectorRegistry(auto_describe=False)
        scraped.register(state)
        body += generate_latest(scraped)
    return body


def token_accepted(expected: str, authorization: str | None) -> bool:
    """Whether ``Authorization`` carries ``Bearer <expected>`` (always, when no token is
    configured). Compared in constant time."""
    if not expected:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    )


def metric_names() -> set[str]:
    """Every series name Paygate can export (counters with ``_total``, histograms with
    ``_bucket``/``_count``/``_sum``, the scrape-time gauges): what dashboards and alerts may
    use (tests/test_metrics.py holds deploy/grafana and deploy/prometheus to it)."""
    names = set(STATE_GAUGES) | {SOURCE_UP}
    for collector in (
        HTTP_REQUEST_SECONDS,
        PAYMENTS,
        REFUNDS,
        PROCESSOR_CALL_SECONDS,
        WEBHOOK_DELIVERIES,
        WEBHOOK_DELIVERY_SECONDS,
        WEBHOOK_CIRCUIT_TRANSITIONS,
        JANITOR_RESCUES,
    ):
        for family in collector.describe():
            if family.type == "histogram":
                names |= {family.name + s for s in ("_bucket", "_count", "_sum")}
            elif family.type == "counter":
                names.add(family.name + "_total")
            else:
                names.add(family.name)
    return names
