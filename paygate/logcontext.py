"""Log context and the JSON log format (``PAYGATE_LOG_FORMAT=json``).

The ids a log line belongs to (``request_id``, ``merchant_id``, ``payment_id``, ``refund_id``,
``webhook_id``, ...) are kept in a context variable: the API's request middleware sets them per
request, the worker's tasks per job, and ``JsonFormatter`` adds them to every line logged
meanwhile, whichever module logs it. Only ids: never a body, a card or a secret.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

# The ids a line may carry, in the order they are written.
FIELDS = (
    "request_id",
    "merchant_id",
    "order_id",
    "payment_id",
    "refund_id",
    "webhook_id",
    "endpoint_id",
)

_CONTEXT: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "paygate_log_context", default=None
)


def begin(**ids: object) -> None:
    """Start a new context (a request, a job) with ``ids``."""
    _CONTEXT.set({k: str(v) for k, v in ids.items() if v is not None})


def add(**ids: object) -> None:
    """Add ``ids`` to the current context (a copy: another thread's is never touched)."""
    current = dict(_CONTEXT.get() or {})
    current.update({k: str(v) for k, v in ids.items() if v is not None})
    _CONTEXT.set(current)


def clear() -> None:
    _CONTEXT.set(None)


def current() -> dict[str, str]:
    return dict(_CONTEXT.get() or {})


@contextmanager
def bound(**ids: object) -> Iterator[None]:
    """The ids for the duration of a block (a worker's job), then the context before it."""
    token = _CONTEXT.set({k: str(v) for k, v in ids.items() if v is not None})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
    ``process``, the context's ids when known, and ``exc_info`` (the traceback as a string)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        ids = _CONTEXT.get()
        if ids:
            for name in FIELDS:
                if name in ids:
                    line[name] = ids[name]
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(level: str = "INFO", log_format: str = "text") -> None:
    """Log to stderr at ``level`` in ``log_format`` (``text`` or ``json``). gunicorn's own
    loggers (``gunicorn.error``) propagate to the root here, so they share the format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])
