"""Use cases. They own transactions and state machines and call the dispatcher after commit.

Services never import Falcon or Huey: the API, the dashboard, the checkout page and the worker
each build a ``Context`` and call the functions of these modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..config import Settings
from ..db import Database
from ..plugins import Plugins
from ..probing import Probes


class Dispatcher(Protocol):
    """Hands work to the worker after commit. Losing a dispatch is allowed: the janitor
    re-dispatches from the database. Implementations never raise to the caller; they return
    False when the work could not be handed over."""

    def payment(self, payment_id: str) -> bool: ...

    def refund(self, refund_id: str) -> bool: ...

    def webhooks(self, log_ids: list) -> bool: ...

    def created(self, payment_id: str, log_ids: list) -> bool:
        """A new payment's job and its events' deliveries, handed over together (one round
        trip where the queue allows it)."""
        ...

    def ping(self) -> bool: ...

    def worker_running(self) -> bool: ...


@dataclass
class Context:
    settings: Settings
    db: Database
    plugins: Plugins
    dispatcher: Dispatcher
    # /readyz and /health's bounded checks of Redis (the database's is the Database's own).
    probes: Probes = field(default_factory=Probes, repr=False, compare=False)
