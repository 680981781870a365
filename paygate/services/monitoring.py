"""Readiness and the scrape-time state of ``/metrics``, for the API, the web apps and the
worker: each answer comes from the record (PostgreSQL) or the queue (Redis) as it is now."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from ..db import monitoring as repo
from ..db import shutdown_socket
from ..errors import ServiceUnavailable
from ..probing import Attempt
from . import Context
from .views import iso

CIRCUIT_STATES = ("closed", "open", "half_open")


def readiness(ctx: Context) -> tuple[bool, dict[str, Any]]:
    """(ready, body) for ``/readyz``: ready while the database (the record) answers. Redis is
    reported but does not decide: with Redis away payments are still accepted and the janitor
    dispatches them once it is back (docs/operations.md, "Probes")."""
    database, redis = database_and_redis(ctx)
    body = {
        "status": "ready" if database else "unready",
        "checks": {
            "database": "ok" if database else "failed",
            "redis": "ok" if redis else "failed",
        },
        "timestamp": iso(datetime.now(UTC)),
    }
    return database, body


def database_and_redis(ctx: Context, *, worker: bool = False) -> tuple[bool, ...]:
    """(database answers, Redis answers[, a worker's heartbeat is fresh]), within
    ``PAYGATE_PROBE_TIMEOUT`` whatever either server does: each check runs in a helper thread
    with that deadline, both at once (paygate/probing.py)."""
    deadline = ctx.settings.probe_timeout_seconds

    def redis_check(attempt) -> tuple[bool, bool]:
        up = ctx.dispatcher.ping()
        return up, bool(worker and up and ctx.dispatcher.worker_running())

    name = "redis+worker" if worker else "redis"
    # Redis's check starts first (its thread runs while the database's caller waits).
    redis_result: list = []
    waiter = threading.Thread(
        target=lambda: redis_result.append(
            ctx.probes.run(name, redis_check, deadline, (False, False))
        ),
        daemon=True,
    )
    waiter.start()
    database = ctx.db.ping(deadline)
    waiter.join(deadline + 0.5)
    redis_up, worker_fresh = redis_result[0] if redis_result else (False, False)
    return (database, redis_up, worker_fresh) if worker else (database, redis_up)


def liveness() -> dict[str, Any]:
    """``/livez``: the process answers; nothing else is asked."""
    return {"status": "alive", "timestamp": iso(datetime.now(UTC))}


def database_state(ctx: Context) -> dict[str, list[tuple[tuple[str, ...], float]]]:
    """``paygate_jobs_pending``, ``paygate_jobs_oldest_due_age_seconds`` and
    ``paygate_webhook_circuits`` from the record."""
    jobs, circuits = _read_queue_state(ctx)
    by_state = dict.fromkeys(CIRCUIT_STATES, 0)
    by_state.update({row["state"]: int(row["circuits"]) for row in circuits})
    return {
        "paygate_jobs_pending": [
            ((row["kind"], state), int(row[state]))
            for row in jobs
            for state in ("due", "running", "scheduled")
        ],
        "paygate_jobs_oldest_due_age_seconds": [
            ((row["kind"],), float(row["oldest_due_seconds"])) for row in jobs
        ],
        "paygate_webhook_circuits": [((state,), n) for state, n in by_state.items()],
    }


def _read_queue_state(ctx: Context) -> tuple[list, list]:
    """The record's queue state, within ``PAYGATE_PROBE_TIMEOUT`` (a frozen database would hold
    the scrape until Prometheus gives up on the whole target): raises ServiceUnavailable past it,
    and the query still running is aborted (its connection's socket shut down)."""

    def read(attempt: Attempt) -> tuple[list, list]:
        with ctx.db.connection() as conn:
            attempt.on_abort(lambda: shutdown_socket(conn))
            try:
                return repo.queue_state(conn)
            finally:
                attempt.on_abort(None)

    state = ctx.probes.run("queue-state", read, ctx.settings.probe_timeout_seconds, None)
    if state is None:
        raise ServiceUnavailable()
    return state


def redis_state(ctx: Context) -> dict[str, list[tuple[tuple[str, ...], float]]]:
    """``paygate_queue_length`` and ``paygate_workers_alive`` from Redis (raises when Redis
    cannot be asked within ``PAYGATE_PROBE_TIMEOUT``)."""
    state = ctx.probes.run(
        "redis-state",
        lambda attempt: ctx.dispatcher.queue_state(),
        ctx.settings.probe_timeout_seconds,
        None,
    )
    if state is None:  # raised, or no answer within PAYGATE_PROBE_TIMEOUT
        raise ServiceUnavailable()
    lengths, alive = state
    return {
        "paygate_queue_length": [((name,), n) for name, n in lengths.items()],
        "paygate_workers_alive": [((), alive)],
    }
