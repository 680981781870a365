"""The composition root shared by every process: settings, pool, plugins, dispatcher."""

from __future__ import annotations

from .config import Settings
from .db import Database
from .plugins import load_plugins
from .services import Context


def require_database_url(settings: Settings) -> str:
    if not settings.database_url:
        raise SystemExit(
            "DATABASE_URL is not set. Run `paygate up` for the embedded database, or set "
            "DATABASE_URL=postgresql://user:pass@host:5432/db"
        )
    return settings.database_url


def build_context(settings: Settings | None = None, *, role: str = "api") -> Context:
    from .jobs.dispatcher import HueyDispatcher

    settings = settings or Settings.from_env()
    db = Database(
        require_database_url(settings),
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        name=f"paygate-{role}",
    )
    return Context(
        settings=settings,
        db=db,
        plugins=load_plugins(settings),
        dispatcher=HueyDispatcher(settings.heartbeat_ttl_seconds),
    )
