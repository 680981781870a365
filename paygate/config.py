"""Settings, read once from the environment: CONTRACT.md section 0 plus ``PAYGATE_*`` knobs."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

TEST_MERCHANT_ID = "550e8400-e29b-41d4-a716-446655440000"
TEST_MERCHANT_NAME = "Test Merchant"
TEST_WEBHOOK_SECRET = "whsec_test_abc123"

# Webhook attempt n (1-based) waits RETRY_DELAYS[n-1] seconds after the previous failure.
RETRY_DELAYS_PRODUCTION = (0, 60, 300, 1800, 7200)
RETRY_DELAYS_TEST = (0, 5, 10, 15, 20)

ENVIRONMENTS = ("development", "production")
# Production mode refuses to start with a shorter PAYGATE_SECRET_KEY (bytes, UTF-8).
MIN_SECRET_KEY_BYTES = 32
# The development default of PAYGATE_FRAME_ANCESTORS: any http(s) site and a saved test.html
# opened from disk. Production's default is none: only the checkout's own origin ('self').
DEVELOPMENT_FRAME_ANCESTORS = ("*", "file:")
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"
# The id of the processor-settings key derived from the master key (PAYGATE_ENCRYPTION_KEYS).
MASTER_KEY_ID = "master"


# -- parsers: each turns the variable's text into the setting's value ---------------------------
# A parser gets the variable's name (for the error message) and its text, stripped. A variable
# that is unset, or set to blank text, takes the field's default, except a list, where blank
# text means "none".


def _str(name: str, raw: str) -> str:
    return raw


def _url(name: str, raw: str) -> str:
    return raw.rstrip("/")


def _flag_true_only(name: str, raw: str) -> bool:
    """The contract's "true only for the string ``true``"."""
    return raw == "true"


def _flag_true_unless_false(name: str, raw: str) -> bool:
    return raw != "false"


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _batch(name: str, raw: str) -> int:
    """How many jobs of a backlog one thread takes at once: a whole number, 1 or more."""
    value = _int(name, raw)
    if value < 1:
        raise ValueError(f"{name} must be 1 or more (1: one job at a time), got {raw!r}")
    return value


# ``auto`` worker processes: one per CPU this process may run on, at most this many (each is a
# pool of PostgreSQL connections; past the cores they add connections, not throughput).
AUTO_WORKER_PROCESSES_MAX = 4


def _processes(name: str, raw: str) -> int | None:
    """``auto`` (None: one per usable CPU, ``AUTO_WORKER_PROCESSES_MAX`` at most) or a whole
    number, 1 or more."""
    if raw.strip().lower() == "auto":
        return None
    value = _int(name, raw)
    if value < 1:
        raise ValueError(f"{name} must be 'auto' or 1 or more, got {raw!r}")
    return value


def _float(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


def _days(name: str, raw: str) -> int:
    """A whole number of days, 0 or more (0 means off)."""
    try:
        days = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of days, got {raw!r}") from None
    if days < 0:
        raise ValueError(f"{name} must not be negative, got {raw!r}")
    return days


def _seconds(name: str, raw: str) -> float:
    """A duration in seconds, 0 or more."""
    seconds = _float(name, raw)
    if seconds < 0:
        raise ValueError(f"{name} must not be negative, got {raw!r}")
    return seconds


def _positive_seconds(name: str, raw: str) -> float:
    """A duration in seconds, more than 0."""
    seconds = _float(name, raw)
    if seconds <= 0:
        raise ValueError(f"{name} must be more than 0 seconds, got {raw!r}")
    return seconds


LOG_FORMATS = ("text", "json")


def _log_format(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in LOG_FORMATS:
        raise ValueError(f"{name} must be one of {', '.join(LOG_FORMATS)}, not {raw!r}")
    return value


def set_process_environment(variable: str, value: str) -> None:
    """Hand ``variable`` to libraries that read it from the environment themselves (the
    Prometheus client's ``PROMETHEUS_MULTIPROC_DIR``) and to the processes this one forks."""
    os.environ[variable] = value


def _environment(name: str, raw: str) -> str:
    """``development`` or ``production``: a typo must not quietly run a production deployment
    in development mode."""
    value = raw.lower()
    if value not in ENVIRONMENTS:
        raise ValueError(f"{name} must be one of {', '.join(ENVIRONMENTS)}, got {raw!r}")
    return value


def _list(name: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _rate(name: str, raw: str) -> tuple[int, int]:
    """``COUNT/SECONDS``: at most COUNT within a window of SECONDS (a COUNT of 0: no limit)."""
    count, _, seconds = raw.partition("/")
    try:
        limit = (int(count), int(seconds))
    except ValueError:
        raise ValueError(f"{name} must be COUNT/SECONDS like 5/600, got {raw!r}") from None
    if limit[0] < 0 or limit[1] < 1:
        raise ValueError(f"{name} needs COUNT >= 0 and SECONDS >= 1, got {raw!r}")
    return limit


def _networks(name: str, raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated addresses or CIDR ranges."""
    try:
        return tuple(ipaddress.ip_network(part, strict=False) for part in _list(name, raw))
    except ValueError as exc:
        raise ValueError(f"{name} must list IP addresses or CIDR ranges: {exc}") from None


def _encryption_keys(name: str, raw: str) -> tuple[tuple[str, bytes | None], ...]:
    """``id:base64url(32 bytes)`` entries, comma-separated; the first seals, all open. The bare
    id ``master`` stands for the key derived from the master key (the default without this
    variable), so a move away from it can keep opening what it sealed until ``reseal``."""
    import base64
    import binascii

    keys: list[tuple[str, bytes | None]] = []
    for part in _list(name, raw):
        key_id, sep, encoded = part.partition(":")
        key_id = key_id.strip()
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", key_id):
            raise ValueError(f"{name}: key ids are 1 to 32 letters, digits, '_', '.' or '-'")
        if key_id == MASTER_KEY_ID and not sep:
            keys.append((key_id, None))
            continue
        try:
            key = base64.urlsafe_b64decode(encoded.strip() + "=" * (-len(encoded.strip()) % 4))
        except (binascii.Error, ValueError):
            key = b""
        if not sep or len(key) != 32:
            raise ValueError(
                f"{name}: key {key_id!r} must be id:base64url(32 random bytes), e.g. "
                f"{key_id}:" + "$(python -c 'import base64,os; "
                "print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
            )
        if any(existing == key_id for existing, _ in keys):
            raise ValueError(f"{name}: key id {key_id!r} appears twice")
        keys.append((key_id, key))
    return tuple(keys)


def environment_value(variable: str) -> str | None:
    """One variable of the process environment, as it is (``paygate merchants set-processor
    --set-from-env``: a secret handed to a command without entering the shell history)."""
    return os.environ.get(variable)


def setting(
    variable: str, parse: Callable[[str, str], Any], default: Any, *, secret: bool = False
) -> Any:
    """A Settings field read from ``variable`` by ``parse``; its default is stated here only.
    A ``secret`` one stays out of ``repr(settings)``."""
    return field(default=default, repr=not secret, metadata={"env": variable, "parse": parse})


# The web processes: their app factory (module:function) and the Settings field of their port.
# ``paygate api|dashboard|checkout`` serve them, ``paygate up`` starts one of each.
APPS = {
    "api": ("paygate.api.app:get_app", "port"),
    "dashboard": ("paygate.web.dashboard.app:get_app", "dashboard_port"),
    "checkout": ("paygate.web.checkout.app:get_app", "checkout_port"),
}


PLUGIN_ENV_PREFIX = "PAYGATE_PLUGIN_"


def plugin_env_name(plugin: str) -> str:
    """A plugin's name as it appears in its ``PAYGATE_PLUGIN_<NAME>_<KEY>`` variables."""
    return re.sub(r"[^A-Za-z0-9]", "_", plugin.rsplit(".", 1)[-1]).upper()


@dataclass(frozen=True)
class Settings:
    """Every setting, each declared once: its variable, its parser and its default.

    ``Settings()`` is the defaults; ``Settings.from_env()`` reads the environment. Read-only:
    the gateway builds one per process at its composition root (``paygate.wiring``).
    """

    database_url: str | None = setting("DATABASE_URL", _str, None)
    redis_url: str | None = setting("REDIS_URL", _str, None)
    port: int = setting("PORT", _int, 8000)
    dashboard_port: int = setting("DASHBOARD_PORT", _int, 3000)
    checkout_port: int = setting("CHECKOUT_PORT", _int, 3001)
    # Loopback unless told otherwise (`--host`, or PAYGATE_BIND): a development gateway has a
    # known merchant and an any-password dashboard. The Docker image sets 0.0.0.0.
    bind_host: str = setting("PAYGATE_BIND", _str, "127.0.0.1")

    # CONTRACT.md section 0: the simulated bank and the test merchant.
    test_mode: bool = setting("TEST_MODE", _flag_true_only, False)
    test_processing_delay_ms: int = setting("TEST_PROCESSING_DELAY", _int, 1000)
    test_payment_success: bool = setting("TEST_PAYMENT_SUCCESS", _flag_true_unless_false, True)
    upi_success_rate: float = setting("UPI_SUCCESS_RATE", _float, 0.90)
    card_success_rate: float = setting("CARD_SUCCESS_RATE", _float, 0.95)
    processing_delay_min_ms: int = setting("PROCESSING_DELAY_MIN", _int, 5000)
    processing_delay_max_ms: int = setting("PROCESSING_DELAY_MAX", _int, 10000)
    webhook_retry_intervals_test: bool = setting(
        "WEBHOOK_RETRY_INTERVALS_TEST", _flag_true_only, False
    )
    test_merchant_email: str = setting("TEST_MERCHANT_EMAIL", _str, "test@example.com")
    test_api_key: str = setting("TEST_API_KEY", _str, "key_test_abc123")
    test_api_secret: str = setting("TEST_API_SECRET", _str, "secret_test_xyz789")

    # Public URLs, as a browser sees them (links in pages, the SDK's iframe, CORS).
    api_url: str = setting("PAYGATE_API_URL", _url, "http://localhost:8000")
    dashboard_url: str = setting("PAYGATE_DASHBOARD_URL", _url, "http://localhost:3000")
    checkout_url: str = setting("PAYGATE_CHECKOUT_URL", _url, "http://localhost:3001")
    cors_origins: tuple[str, ...] = setting("PAYGATE_CORS_ORIGINS", _list, ())
    # The developer CLI (``paygate listen|trigger|payments|refunds``, docs/cli.md) calls the API
    # at ``api_url`` as this merchant; unset, as the test merchant (TEST_API_KEY and
    # TEST_API_SECRET), so it works against ``paygate up`` with nothing set.
    cli_api_key: str | None = setting("PAYGATE_API_KEY", _str, None)
    cli_api_secret: str | None = setting("PAYGATE_API_SECRET", _str, None, secret=True)
    # CSP frame-ancestors of the checkout page: the merchant sites that may embed it
    # (docs/checkout.md), always after 'self'. None: DEVELOPMENT_FRAME_ANCESTORS in development,
    # none in production (where the operator lists the merchants' origins).
    frame_ancestors: tuple[str, ...] = setting("PAYGATE_FRAME_ANCESTORS", _list, None)

    # Processes.
    api_workers: int = setting("PAYGATE_API_WORKERS", _int, 2)
    api_threads: int = setting("PAYGATE_API_THREADS", _int, 8)
    db_pool_min: int = setting("PAYGATE_DB_POOL_MIN", _int, 2)
    db_pool_max: int = setting("PAYGATE_DB_POOL_MAX", _int, 16)
    worker_concurrency: int = setting("PAYGATE_WORKER_CONCURRENCY", _int, 16)
    # Processes ``paygate worker`` runs (itself and helpers it supervises), each with its own
    # threads and pool: one interpreter lock per core (docs/operations.md, "Scaling"). None
    # (``auto``): one per CPU this process may use, AUTO_WORKER_PROCESSES_MAX at most.
    worker_processes: int | None = setting("PAYGATE_WORKER_PROCESSES", _processes, None)
    # Payments a worker thread takes from the queue at once when there is a backlog: claimed in
    # one statement, settled one after the other (``payments.process_batch``); 1: one at a time.
    payment_batch: int = setting("PAYGATE_PAYMENT_BATCH", _batch, 8)
    # The worker's CPU priority (nice, 0-19): on a machine it shares with the API, a backlog
    # being drained must not take the cores the API answers from (docs/operations.md,
    # "Scaling"). 0 keeps the priority it was started with.
    worker_nice: int = setting("PAYGATE_WORKER_NICE", _int, 10)
    environment: str = setting("PAYGATE_ENV", _environment, "development")
    log_level: str = setting("PAYGATE_LOG_LEVEL", _str, "INFO")
    # ``text`` (one readable line per record) or ``json`` (one JSON object per line, with the
    # request, merchant and payment ids of the work it belongs to: docs/operations.md, "Logs").
    log_format: str = setting("PAYGATE_LOG_FORMAT", _log_format, "text")
    # Observability (docs/operations.md, "Metrics"): the worker's own HTTP server for
    # /metrics, /livez and /readyz (0: none); a Bearer token /metrics then asks for (empty:
    # none, protect it at the network instead).
    worker_metrics_port: int = setting("PAYGATE_WORKER_METRICS_PORT", _int, 9108)
    metrics_token: str = setting("PAYGATE_METRICS_TOKEN", _str, "", secret=True)
    # /readyz and /health answer within this many seconds whatever the database and Redis do
    # (a check still waiting then counts as failed: docs/operations.md, "Probes").
    probe_timeout_seconds: float = setting("PAYGATE_PROBE_TIMEOUT", _positive_seconds, 2.0)
    state_dir: str = setting("PAYGATE_STATE_DIR", _str, ".paygate")
    # ``paygate up``'s embedded servers: None takes 5432 / 6379, or a free port when taken.
    embedded_pg_port: int | None = setting("PAYGATE_EMBEDDED_PG_PORT", _int, None)
    embedded_redis_port: int | None = setting("PAYGATE_EMBEDDED_REDIS_PORT", _int, None)

    # Jobs and recovery (see docs/operations.md).
    # Several gateways (or test runs) can share one Redis under different queue names.
    queue_name: str = setting("PAYGATE_QUEUE", _str, "paygate")
    job_lease_seconds: float = setting("PAYGATE_JOB_LEASE_SECONDS", _float, 30.0)
    # None: 0.25 s with the test retry intervals (retries land within 1 s of schedule), else 1 s.
    janitor_interval_seconds: float = setting("PAYGATE_JANITOR_INTERVAL", _float, None)
    redispatch_after_seconds: float = setting("PAYGATE_REDISPATCH_AFTER", _float, 30.0)
    lost_after_seconds: float = setting("PAYGATE_LOST_AFTER", _float, 2.0)
    heartbeat_interval_seconds: float = setting("PAYGATE_HEARTBEAT_INTERVAL", _float, 2.0)
    heartbeat_ttl_seconds: float = setting("PAYGATE_HEARTBEAT_TTL", _float, 10.0)
    webhook_timeout_seconds: float = setting("PAYGATE_WEBHOOK_TIMEOUT", _float, 5.0)
    # Webhook isolation (docs/operations.md, "Webhook isolation"): deliveries run on their own
    # queue (``<PAYGATE_QUEUE>-webhooks``) with their own threads in every worker, never on the
    # threads that settle payments and refunds.
    webhook_concurrency: int = setting("PAYGATE_WEBHOOK_CONCURRENCY", _int, 8)
    # Delivery tasks a webhook thread takes from the queue at once when there is a backlog:
    # claimed in one statement, made one after the other, recorded in one statement
    # (``webhooks.deliver_batch``); 1: one at a time.
    webhook_batch: int = setting("PAYGATE_WEBHOOK_BATCH", _batch, 8)
    # Deliveries to one endpoint in flight at once in each worker process (of its
    # PAYGATE_WEBHOOK_CONCURRENCY threads): not a global limit.
    webhook_endpoint_concurrency: int = setting("PAYGATE_WEBHOOK_ENDPOINT_CONCURRENCY", _int, 4)
    # Circuit breaker: this many failed attempts in a row pause the endpoint for
    # PAYGATE_WEBHOOK_BREAKER_OPEN seconds, doubling on each failed probe up to the maximum.
    webhook_breaker_failures: int = setting("PAYGATE_WEBHOOK_BREAKER_FAILURES", _int, 5)
    webhook_breaker_open_seconds: float = setting("PAYGATE_WEBHOOK_BREAKER_OPEN", _seconds, 30.0)
    webhook_breaker_max_open_seconds: float = setting(
        "PAYGATE_WEBHOOK_BREAKER_MAX_OPEN", _seconds, 600.0
    )
    # Graceful stop (SIGTERM to any process): running requests and jobs get this long to finish.
    stop_timeout_seconds: float = setting("PAYGATE_STOP_TIMEOUT", _seconds, 25.0)
    # ``paygate up``: a child that crashes COUNT times within SECONDS is a crash loop, and
    # everything stops; below that it is restarted with back-off.
    crash_loop: tuple[int, int] = setting("PAYGATE_CRASH_LOOP", _rate, (5, 60))
    # psycopg's prepare_threshold: a statement run this many times on a connection is prepared
    # server-side (0: at once); a negative value never prepares (PgBouncer in transaction mode
    # before 1.21; docs/operations.md, "Connection pooling").
    db_prepare_threshold: int = setting("PAYGATE_DB_PREPARE_THRESHOLD", _int, 5)
    # The whole of a processor's ``tokenize`` at payment creation (the caller waits for it).
    tokenize_timeout_seconds: float = setting("PAYGATE_TOKENIZE_TIMEOUT_SECONDS", _seconds, 10.0)

    # Plugins and webhooks.
    disable_plugins: tuple[str, ...] = setting("PAYGATE_DISABLE_PLUGINS", _list, ())
    # The refund policies asked first, in this order (plugin names; docs/refund-policies.md,
    # "Order"); the others follow in the default order.
    refund_policy_order: tuple[str, ...] = setting("PAYGATE_REFUND_POLICY_ORDER", _list, ())
    # Every PAYGATE_PLUGIN_* variable, as (name, value) pairs: each plugin's own configuration
    # (``PluginContext.config``; ``plugin_config`` picks one plugin's).
    plugin_env: tuple[tuple[str, str], ...] = field(
        default=(), repr=False, metadata={"env": f"{PLUGIN_ENV_PREFIX}<NAME>_<KEY>"}
    )
    allow_private_webhook_urls: bool = setting(
        "PAYGATE_ALLOW_PRIVATE_WEBHOOKS", _flag_true_only, False
    )
    # After a webhook secret rotation the previous secret keeps signing deliveries (next to the
    # new one) for this many seconds; 0 switches at once.
    webhook_secret_overlap_seconds: float = setting(
        "PAYGATE_WEBHOOK_SECRET_OVERLAP", _seconds, 24 * 3600.0
    )
    max_body_bytes: int = setting("PAYGATE_MAX_BODY_BYTES", _int, 64 * 1024)
    secret_key: str = setting("PAYGATE_SECRET_KEY", _str, "")
    # Keys sealing per-merchant processor settings (docs/security.md): the first seals, every
    # one opens. Empty: one key derived from the master key, id "master".
    encryption_keys: tuple[tuple[str, bytes | None], ...] = setting(
        "PAYGATE_ENCRYPTION_KEYS", _encryption_keys, (), secret=True
    )
    # A dashboard session unused for this long ends (the 12-hour absolute limit stays).
    session_idle_minutes: int = setting("PAYGATE_SESSION_IDLE_MINUTES", _int, 30)
    # The built-in refund_window policy: refunds only within this many days (0: off).
    refund_window_days: int = setting("PAYGATE_REFUND_WINDOW_DAYS", _days, 0)
    # The test-mode processor's ledger file (docs/operations.md, "Proving it"); None: off.
    testmode_ledger: str | None = setting("PAYGATE_TESTMODE_LEDGER", _str, None)
    # The test processor's 3-D Secure challenge (card 4000 0000 0000 3220): a challenge not
    # answered within this many seconds of the payment's creation fails AUTHENTICATION_TIMEOUT.
    testmode_challenge_seconds: float = setting(
        "PAYGATE_TESTMODE_CHALLENGE_SECONDS", _seconds, 600.0
    )

    # Abuse limits (docs/operations.md, "Abuse limits"): COUNT/SECONDS, counted atomically in
    # PostgreSQL. Public payment creation (the checkout's endpoint, no credentials):
    limit_public_order: tuple[int, int] = setting("PAYGATE_LIMIT_PUBLIC_ORDER", _rate, (5, 600))
    limit_public_ip: tuple[int, int] = setting("PAYGATE_LIMIT_PUBLIC_IP", _rate, (10, 60))
    limit_public_merchant: tuple[int, int] = setting(
        "PAYGATE_LIMIT_PUBLIC_MERCHANT", _rate, (600, 60)
    )
    # Dashboard sign-in attempts; each window a limit was exceeded in is followed by one twice
    # as long (growing back-off, up to 16 times the base window).
    limit_sign_in_ip: tuple[int, int] = setting("PAYGATE_LIMIT_SIGN_IN_IP", _rate, (30, 900))
    limit_sign_in_account_ip: tuple[int, int] = setting(
        "PAYGATE_LIMIT_SIGN_IN_ACCOUNT_IP", _rate, (10, 900)
    )
    limit_sign_in_account: tuple[int, int] = setting(
        "PAYGATE_LIMIT_SIGN_IN_ACCOUNT", _rate, (100, 900)
    )
    # Processor callbacks (no credentials) that are refused, per client address: what an
    # unverifiable caller can make the gateway record before it gets 429 (verified callbacks
    # never count).
    limit_callback_refusals: tuple[int, int] = setting(
        "PAYGATE_LIMIT_CALLBACK_REFUSALS", _rate, (30, 60)
    )
    # Webhook test sends and manual retries (API and dashboard), per merchant.
    limit_webhook_manual: tuple[int, int] = setting("PAYGATE_LIMIT_WEBHOOK_MANUAL", _rate, (20, 60))
    # Proxies whose X-Forwarded-For is believed: the client is the right-most hop that is not
    # one of them. Empty (the default): the client is the socket peer, X-Forwarded-For ignored.
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = setting(
        "PAYGATE_TRUSTED_PROXIES", _networks, ()
    )

    def __post_init__(self) -> None:
        if self.janitor_interval_seconds is None:
            interval = 0.25 if self.webhook_retry_intervals_test else 1.0
            object.__setattr__(self, "janitor_interval_seconds", interval)
        if self.frame_ancestors is None:
            ancestors = () if self.is_production else DEVELOPMENT_FRAME_ANCESTORS
            object.__setattr__(self, "frame_ancestors", ancestors)

    def check_startup(self) -> None:
        """Refuse what production mode must never run with (CONTRACT.md section 9): a missing
        or short ``PAYGATE_SECRET_KEY`` (every server-side key derives from it; without it the
        key would sit in the database it protects), or a checkout any site may frame. Raises
        ValueError with one line saying what to do. Every command that starts a process or
        touches the database calls it first (``paygate.cli``, ``paygate.wiring``)."""
        if not self.is_production:
            return
        size = len(self.secret_key.encode("utf-8"))
        if size < MIN_SECRET_KEY_BYTES:
            state = "is not set" if not size else f"is only {size} bytes"
            raise ValueError(
                f"PAYGATE_SECRET_KEY {state}: production mode (PAYGATE_ENV=production) needs "
                f"a secret key of at least {MIN_SECRET_KEY_BYTES} bytes, e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        wildcards = [s for s in self.frame_ancestors if s == "*" or s.endswith(":")]
        if wildcards:
            raise ValueError(
                f"PAYGATE_FRAME_ANCESTORS: {', '.join(wildcards)} would let any site frame the "
                "checkout; production mode (PAYGATE_ENV=production) needs the merchants' "
                "origins, e.g. https://shop.example.com"
            )

    @property
    def public_urls(self) -> tuple[str, str, str]:
        """The API, dashboard and checkout as browsers reach them."""
        return (self.api_url, self.dashboard_url, self.checkout_url)

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
    def strict_transport_security(self) -> str | None:
        """The ``Strict-Transport-Security`` header of every response: production only (a
        development browser on http://localhost must not learn HSTS for localhost)."""
        return STRICT_TRANSPORT_SECURITY if self.is_production else None

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        """The CORS allow-list: the dashboard's and checkout's origins, then
        ``PAYGATE_CORS_ORIGINS``. In development each one on a loopback name (``localhost``,
        ``127.0.0.1``, ``[::1]``) also brings the same scheme and port on the other two, so a
        page opened at http://127.0.0.1:3001 works like one at http://localhost:3001.
        Production: exactly the configured list."""
        configured = (self.dashboard_url, self.checkout_url, *self.cors_origins)
        if self.is_production:
            return tuple(dict.fromkeys(configured))
        loopback = ("localhost", "127.0.0.1", "[::1]")
        aliases = []
        for origin in configured:
            try:
                parts = urlsplit(origin)
                host, port = parts.hostname, parts.port
            except ValueError:
                continue
            name = "[::1]" if host == "::1" else host
            if name in loopback and parts.scheme in ("http", "https"):
                suffix = f":{port}" if port else ""
                aliases += [f"{parts.scheme}://{other}{suffix}" for other in loopback]
        return tuple(dict.fromkeys((*configured, *aliases)))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: str) -> Settings:
        """Settings from ``env`` (the process environment when None), with ``overrides`` (by
        variable name, e.g. ``TEST_MODE="true"``) on top. Raises ValueError naming the variable
        whose value cannot be parsed."""
        source = {**(os.environ if env is None else env), **overrides}
        values = {}
        for f in fields(cls):
            if "parse" not in f.metadata:  # plugin_env: every PAYGATE_PLUGIN_* variable, below
                continue
            raw = source.get(f.metadata["env"])
            if raw is None:
                continue
            raw = raw.strip()
            if not raw and f.metadata["parse"] not in (_list, _networks):
                continue
            values[f.name] = f.metadata["parse"](f.metadata["env"], raw)
        values["plugin_env"] = tuple(
            sorted((k, v) for k, v in source.items() if k.startswith(PLUGIN_ENV_PREFIX))
        )
        return cls(**values)

    def plugin_config(self, plugin: str) -> dict[str, str]:
        """One plugin's configuration: ``PAYGATE_PLUGIN_<NAME>_<KEY>`` values by ``<key>`` in
        lower case, ``<NAME>`` being ``plugin`` upper-cased with every character other than a
        letter or digit as ``_`` (plugin ``jsonl-observer``: ``PAYGATE_PLUGIN_JSONL_OBSERVER_``).
        """
        prefix = f"{PLUGIN_ENV_PREFIX}{plugin_env_name(plugin)}_"
        return {k[len(prefix) :].lower(): v for k, v in self.plugin_env if k.startswith(prefix)}
