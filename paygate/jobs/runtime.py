"""The worker process's services context, built once per process (after any fork)."""

from __future__ import annotations

import threading

from ..services import Context

_lock = threading.Lock()
_context: Context | None = None


def context() -> Context:
    global _context
    if _context is None:
        with _lock:
            if _context is None:
                from ..wiring import build_context

                _context = build_context(role="worker")
    return _context


def install(ctx: Context) -> None:
    """Use ``ctx`` instead of building one (tests and ``paygate worker`` set it up front)."""
    global _context
    _context = ctx
