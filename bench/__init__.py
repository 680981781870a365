"""Paygate's benchmark suite: ``python -m bench`` (full) or ``python -m bench --quick`` (CI).

It starts its own gateway (gunicorn API + Huey worker) on a fresh database, a local webhook
receiver that verifies signatures, and measures what a gateway exists for (B1-B5) next to the
machine's raw ceilings (B6). See docs/performance.md.
"""
