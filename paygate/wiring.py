"""The composition root shared by every process: settings, pool, plugins, queue, dispatcher.

A process reads its ``Settings`` once (``Settings.from_env()``), then ``build_context`` wires
the rest from them: the database pool, the plugins, and the queue (Huey instance, tasks and the
dispatcher services call after commit). The queue is bound to the context, so the tasks this
process runs use it. The API, dashboard and checkout app factories and ``paygate worker`` start
here; nothing below this module builds a collaborator of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from . import metrics
from .config import TEST_MERCHANT_ID, Settings
from .db import Database, connect, prepare_threshold
from .db.merchants import active_on_processor, by_id, seed_test_merchant
from .db.migrate import migrate
from .errors import ServiceUnavailable
from .jobs.queue import Queue, build_queue
from .jobs.tasks import DELIVERY_OUTCOMES
from .plugins import Plugins, load_plugins
from .services import Context, merchants, recovery, webhook_secrets

log = logging.getLogger("paygate")
T = TypeVar("T")


def require_database_url(settings: Settings) -> str:
    if not settings.database_url:
        raise SystemExit(
            "DATABASE_URL is not set. Run `paygate up` for the embedded database, or set "
            "DATABASE_URL=postgresql://user:pass@host:5432/db"
        )
    return settings.database_url


def require_safe_settings(settings: Settings) -> None:
    """Exit with one clear line when production mode lacks what it needs
    (``Settings.check_startup``). ``paygate`` checks before any command; this repeats it for
    processes started some other way (gunicorn on ``get_app()``, an embedding program)."""
    try:
        settings.check_startup()
    except ValueError as exc:
        raise SystemExit(f"paygate: {exc}") from None


def prepare_database(settings: Settings) -> list[int]:
    """Migrate, seed (the contract's test merchant, never in production mode), and replace
    secrets stored in plaintext (API secrets become keyed hashes, webhook secrets are sealed), or
    exit with one clear line when the database cannot be reached. Returns the migration
    versions applied now."""
    require_safe_settings(settings)
    url = require_database_url(settings)
    try:
        with connect(
            url, prepare_threshold=prepare_threshold(settings.db_prepare_threshold)
        ) as conn:
            applied = migrate(conn)
            created = not settings.is_production and seed_test_merchant(conn, settings)
            leftover = settings.is_production and by_id(conn, TEST_MERCHANT_ID)
            simulated = settings.is_production and active_on_processor(conn, "test")
        hashed, sealed = _with_record(settings, _replace_plaintext_secrets)
    except ServiceUnavailable as exc:
        raise SystemExit(f"paygate: {exc.description}") from None
    if applied:
        log.info("applied migrations %s", applied)
    if created:
        log.info("seeded the test merchant (%s)", settings.test_merchant_email)
    if hashed:
        log.info("replaced %d plaintext API secrets by their keyed hashes", hashed)
    if sealed:
        log.info("sealed the plaintext webhook secrets of %d merchant(s)", sealed)
    if settings.is_production:
        _warn_about_production(settings, simulated)
    if leftover and leftover.is_active:
        # A database seeded before production mode was switched on: its credentials are
        # published in CONTRACT.md (docs/operations.md, "Production mode").
        log.warning(
            "production mode: the development test merchant %s (%s) is still active in this "
            "database; switch it off: paygate merchants deactivate %s",
            leftover.email,
            leftover.id,
            leftover.email,
        )
    return applied


def _warn_about_production(settings: Settings, simulated: int) -> None:
    """What production mode allows but an operator most likely did not mean (each a WARNING at
    every start; docs/operations.md, "Production mode")."""
    if simulated:
        log.warning(
            "production mode: %d active merchant(s) route payments to the simulated test "
            "processor; install a real processor plugin and `paygate merchants set-processor`",
            simulated,
        )
    if settings.allow_private_webhook_urls:
        log.warning(
            "production mode: PAYGATE_ALLOW_PRIVATE_WEBHOOKS is on, so merchants can point "
            "webhooks at this network's private addresses"
        )
    plain = [url for url in settings.public_urls if not url.startswith("https://")]
    if plain:
        log.warning(
            "production mode: public URLs are not https (%s); set PAYGATE_API_URL, "
            "PAYGATE_DASHBOARD_URL and PAYGATE_CHECKOUT_URL to what browsers reach",
            ", ".join(plain),
        )


def _replace_plaintext_secrets(ctx: Context) -> tuple[int, int]:
    """API secrets left in plaintext become keyed hashes, webhook secrets are sealed (rows from
    before migrations 004/005, the seed, or written by hand): how many of each."""
    return merchants.hash_legacy_secrets(ctx), webhook_secrets.seal_stored_plaintext(ctx)


def _with_record(settings: Settings, work: Callable[[Context], T]) -> T:
    """Run ``work`` with a context that has only what start-up chores need: the settings (the
    server key lives there) and a one-connection pool. SQL cannot compute keyed hashes or
    encrypt, so these run here rather than in a migration; each is idempotent."""
    db = Database(
        require_database_url(settings),
        min_size=1,
        max_size=1,
        name="paygate-prepare",
        prepare_threshold=prepare_threshold(settings.db_prepare_threshold),
    )
    try:
        ctx = Context(settings=settings, db=db, plugins=None, dispatcher=None)  # type: ignore[arg-type]
        return work(ctx)
    finally:
        db.close()


def build_context(
    settings: Settings | None = None,
    *,
    role: str = "api",
    queue: Queue | None = None,
    plugins: Plugins | None = None,
) -> Context:
    """The services context of one process (``role`` names its pool). ``settings`` default to
    the environment's; ``queue`` to a new one built from them, bound to the returned context;
    ``plugins`` to ``load_plugins(settings)`` (strict: a broken plugin stops the process)."""
    settings = settings or Settings.from_env()
    require_safe_settings(settings)
    queue = queue or build_queue(settings)
    db = Database(
        require_database_url(settings),
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        name=f"paygate-{role}",
        prepare_threshold=prepare_threshold(settings.db_prepare_threshold),
        # The worker's backends yield to the API's like the worker itself (PAYGATE_WORKER_NICE).
        backend_nice=settings.worker_nice if role == "worker" else 0,
    )
    ctx = Context(
        settings=settings,
        db=db,
        plugins=plugins if plugins is not None else load_plugins(settings),
        dispatcher=queue.dispatcher,
    )
    queue.bind(ctx)
    start_counters_at_zero(list(ctx.plugins.processors))
    return ctx


def start_counters_at_zero(processors: list[str]) -> None:
    """Every known label set of the counters exported at 0 in this process: an alert on
    ``increase()`` then sees the first event of a new process (docs/operations.md, "Metrics")."""
    metrics.prepare_process(
        {
            metrics.PAYMENTS: [(p, o) for p in processors for o in metrics.PAYMENT_OUTCOMES],
            metrics.REFUNDS: [(p, o) for p in processors for o in metrics.REFUND_OUTCOMES],
            metrics.JANITOR_RESCUES: [(kind,) for kind in recovery.KINDS],
            metrics.WEBHOOK_DELIVERIES: [(o,) for o in sorted(set(DELIVERY_OUTCOMES.values()))],
            metrics.WEBHOOK_CIRCUIT_TRANSITIONS: [(c,) for c in metrics.CIRCUIT_CHANGES],
        }
    )


def build_worker(settings: Settings) -> tuple[Context, Queue]:
    """What ``paygate worker`` runs: the queue it consumes and the context its tasks use."""
    queue = build_queue(settings)
    return build_context(settings, role="worker", queue=queue), queue
