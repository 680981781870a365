"""Where the tests' PostgreSQL and Redis come from.

``DATABASE_URL`` / ``REDIS_URL`` set: use those servers (a fresh database is created on the
PostgreSQL server for this run and dropped afterwards). Unset: start the embedded servers, as
``paygate up`` does, in a temporary state directory.
"""

from __future__ import annotations

import os

from paygate.embedded import Scratch, scratch


def start() -> Scratch:
    return scratch("paygate_test", os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL"))


def stop(services: Scratch) -> None:
    services.stop()
