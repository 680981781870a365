"""Health and job statistics, from the record and the worker heartbeat."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..db import jobs as jobs_repo
from . import Context, monitoring
from .views import iso


def health(ctx: Context) -> tuple[bool, dict[str, Any]]:
    """(healthy, body). Unhealthy only when the database, the record, is unreachable. Answers
    within ``PAYGATE_PROBE_TIMEOUT`` whatever the servers do (a check still waiting counts as
    disconnected)."""
    database_ok, redis_ok, worker = monitoring.database_and_redis(ctx, worker=True)
    body = {
        "status": "healthy" if database_ok else "unhealthy",
        "database": "connected" if database_ok else "disconnected",
        "redis": "connected" if redis_ok else "disconnected",
        "worker": "running" if worker else "stopped",
        "timestamp": iso(datetime.now(UTC)),
    }
    return database_ok, body


def job_status(ctx: Context) -> dict[str, Any]:
    """``{pending, processing, completed, failed, worker_status}`` over every job kind, counted
    from the database (so retries scheduled for later count as pending), and the worker's state
    from its heartbeat in Redis (``stopped`` when Redis cannot be asked)."""
    with ctx.db.connection() as conn:
        counts = jobs_repo.counts(conn)
    running = ctx.dispatcher.worker_running()  # never raises: False when Redis is away
    return {**counts, "worker_status": "running" if running else "stopped"}
