"""Settings, read once from the environment: CONTRACT.md section 0 plus ``PAYGATE_*`` knobs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

TEST_MERCHANT_ID = "550e8400-e29b-41d4-a716-446655440000"
TEST_MERCHANT_NAME = "Test Merchant"
TEST_WEBHOOK_SECRET = "whsec_test_abc123"

# Webhook attempt n (1-based) waits RETRY_DELAYS[n-1] seconds after the previous failure.
RETRY_DELAYS_PRODUCTION = (0, 60, 300, 1800, 7200)
RETRY_DELAYS_TEST = (0, 5, 10, 15, 20)


def _flag_true_only(value: str | None) -> bool:
    """The contract's "true only for the string ``true``"."""
    return value == "true"


def _flag_true_unless_false(value: str | None) -> bool:
    return value != "false"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


def _list(env: Mapping[str, str], name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None:
        return default
    return tuple(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    redis_url: str | None = None
    port: int = 8000
    dashboard_port: int = 3000
    checkout_port: int = 3001
    bind_host: str = "0.0.0.0"

    # CONTRACT.md section 0: the simulated bank and the test merchant.
    test_mode: bool = False
    test_processing_delay_ms: int = 1000
    test_payment_success: bool = True
    upi_success_rate: float = 0.90
    card_success_rate: float = 0.95
    processing_delay_min_ms: int = 5000
    processing_delay_max_ms: int = 10000
    webhook_retry_intervals_test: bool = False
    test_merchant_email: str = "test@example.com"
    test_api_key: str = "key_test_abc123"
    test_api_secret: str = "secret_test_xyz789"

    # Public URLs, as a browser sees them (links in pages, the SDK's iframe, CORS).
    api_url: str = "http://localhost:8000"
    dashboard_url: str = "http://localhost:3000"
    checkout_url: str = "http://localhost:3001"
    cors_origins: tuple[str, ...] = ()
    # CSP frame-ancestors of the checkout page: the merchant sites that may embed it
    # (docs/checkout.md). The development default allows any http(s) site and a saved
    # test.html opened from disk (file:); production should list the merchants' origins.
    frame_ancestors: tuple[str, ...] = ("*", "file:")

    # Processes.
    api_workers: int = 2
    api_threads: int = 8
    db_pool_min: int = 2
    db_pool_max: int = 16
    worker_concurrency: int = 16
    environment: str = "development"

    # Jobs and recovery (see docs/operations.md).
    job_lease_seconds: float = 30.0
    janitor_interval_seconds: float = 1.0
    redispatch_after_seconds: float = 30.0
    lost_after_seconds: float = 2.0
    heartbeat_interval_seconds: float = 2.0
    heartbeat_ttl_seconds: float = 10.0
    webhook_timeout_seconds: float = 5.0

    # Plugins and webhooks.
    disable_plugins: tuple[str, ...] = ()
    allow_private_webhook_urls: bool = False
    max_body_bytes: int = 64 * 1024
    secret_key: str = ""
    state_dir: str = ".paygate"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def retry_delays(self) -> tuple[int, ...]:
        return RETRY_DELAYS_TEST if self.webhook_retry_intervals_test else RETRY_DELAYS_PRODUCTION

    @property
    def max_webhook_attempts(self) -> int:
        return len(self.retry_delays)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.dashboard_url, self.checkout_url, *self.cors_origins)))

    def replace(self, **changes) -> Settings:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        test_mode = _flag_true_only(env.get("TEST_MODE"))
        environment = env.get("PAYGATE_ENV", "development")
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            redis_url=env.get("REDIS_URL") or None,
            port=_int(env, "PORT", 8000),
            dashboard_port=_int(env, "DASHBOARD_PORT", 3000),
            checkout_port=_int(env, "CHECKOUT_PORT", 3001),
            bind_host=env.get("PAYGATE_BIND", "0.0.0.0"),
            test_mode=test_mode,
            test_processing_delay_ms=_int(env, "TEST_PROCESSING_DELAY", 1000),
            test_payment_success=_flag_true_unless_false(env.get("TEST_PAYMENT_SUCCESS")),
            upi_success_rate=_float(env, "UPI_SUCCESS_RATE", 0.90),
            card_success_rate=_float(env, "CARD_SUCCESS_RATE", 0.95),
            processing_delay_min_ms=_int(env, "PROCESSING_DELAY_MIN", 5000),
            processing_delay_max_ms=_int(env, "PROCESSING_DELAY_MAX", 10000),
            webhook_retry_intervals_test=_flag_true_only(env.get("WEBHOOK_RETRY_INTERVALS_TEST")),
            test_merchant_email=env.get("TEST_MERCHANT_EMAIL") or "test@example.com",
            test_api_key=env.get("TEST_API_KEY") or "key_test_abc123",
            test_api_secret=env.get("TEST_API_SECRET") or "secret_test_xyz789",
            api_url=env.get("PAYGATE_API_URL", "http://localhost:8000").rstrip("/"),
            dashboard_url=env.get("PAYGATE_DASHBOARD_URL", "http://localhost:3000").rstrip("/"),
            checkout_url=env.get("PAYGATE_CHECKOUT_URL", "http://localhost:3001").rstrip("/"),
            cors_origins=_list(env, "PAYGATE_CORS_ORIGINS"),
            frame_ancestors=_list(env, "PAYGATE_FRAME_ANCESTORS", ("*", "file:")),
            api_workers=_int(env, "PAYGATE_API_WORKERS", 2),
            api_threads=_int(env, "PAYGATE_API_THREADS", 8),
            db_pool_min=_int(env, "PAYGATE_DB_POOL_MIN", 2),
            db_pool_max=_int(env, "PAYGATE_DB_POOL_MAX", 16),
            worker_concurrency=_int(env, "PAYGATE_WORKER_CONCURRENCY", 16),
            environment=environment,
            job_lease_seconds=_float(env, "PAYGATE_JOB_LEASE_SECONDS", 30.0),
            janitor_interval_seconds=_float(
                env,
                "PAYGATE_JANITOR_INTERVAL",
                0.25 if _flag_true_only(env.get("WEBHOOK_RETRY_INTERVALS_TEST")) else 1.0,
            ),
            redispatch_after_seconds=_float(env, "PAYGATE_REDISPATCH_AFTER", 30.0),
            lost_after_seconds=_float(env, "PAYGATE_LOST_AFTER", 2.0),
            heartbeat_interval_seconds=_float(env, "PAYGATE_HEARTBEAT_INTERVAL", 2.0),
            heartbeat_ttl_seconds=_float(env, "PAYGATE_HEARTBEAT_TTL", 10.0),
            webhook_timeout_seconds=_float(env, "PAYGATE_WEBHOOK_TIMEOUT", 5.0),
            disable_plugins=_list(env, "PAYGATE_DISABLE_PLUGINS"),
            allow_private_webhook_urls=_flag_true_only(env.get("PAYGATE_ALLOW_PRIVATE_WEBHOOKS")),
            max_body_bytes=_int(env, "PAYGATE_MAX_BODY_BYTES", 64 * 1024),
            secret_key=env.get("PAYGATE_SECRET_KEY", ""),
            state_dir=env.get("PAYGATE_STATE_DIR", ".paygate"),
        )
