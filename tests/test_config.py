"""Settings from the environment: every variable reaches its setting, flags mean what the
contract says, an empty environment gives the defaults, and a bad number names its variable."""

from __future__ import annotations

import pytest

from paygate.config import RETRY_DELAYS_PRODUCTION, RETRY_DELAYS_TEST, Settings

# (variable, value set, setting, value read)
VARIABLES = [
    ("DATABASE_URL", "postgresql://u@h:5432/d", "database_url", "postgresql://u@h:5432/d"),
    ("REDIS_URL", "redis://h:6380/1", "redis_url", "redis://h:6380/1"),
    ("PORT", "9000", "port", 9000),
    ("DASHBOARD_PORT", "9001", "dashboard_port", 9001),
    ("CHECKOUT_PORT", "9002", "checkout_port", 9002),
    ("PAYGATE_BIND", "127.0.0.1", "bind_host", "127.0.0.1"),
    ("TEST_MODE", "true", "test_mode", True),
    ("TEST_PROCESSING_DELAY", "0", "test_processing_delay_ms", 0),
    ("TEST_PAYMENT_SUCCESS", "false", "test_payment_success", False),
    ("UPI_SUCCESS_RATE", "0.5", "upi_success_rate", 0.5),
    ("CARD_SUCCESS_RATE", "1", "card_success_rate", 1.0),
    ("PROCESSING_DELAY_MIN", "10", "processing_delay_min_ms", 10),
    ("PROCESSING_DELAY_MAX", "20", "processing_delay_max_ms", 20),
    ("WEBHOOK_RETRY_INTERVALS_TEST", "true", "webhook_retry_intervals_test", True),
    ("TEST_MERCHANT_EMAIL", "m@example.org", "test_merchant_email", "m@example.org"),
    ("TEST_API_KEY", "key_other", "test_api_key", "key_other"),
    ("TEST_API_SECRET", "secret_other", "test_api_secret", "secret_other"),
    ("PAYGATE_API_URL", "https://api.example/", "api_url", "https://api.example"),
    ("PAYGATE_DASHBOARD_URL", "https://d.example/", "dashboard_url", "https://d.example"),
    ("PAYGATE_CHECKOUT_URL", "https://c.example/", "checkout_url", "https://c.example"),
    ("PAYGATE_CORS_ORIGINS", "https://a, ,https://b", "cors_origins", ("https://a", "https://b")),
    ("PAYGATE_FRAME_ANCESTORS", "https://shop", "frame_ancestors", ("https://shop",)),
    ("PAYGATE_API_WORKERS", "3", "api_workers", 3),
    ("PAYGATE_API_THREADS", "4", "api_threads", 4),
    ("PAYGATE_DB_POOL_MIN", "1", "db_pool_min", 1),
    ("PAYGATE_DB_POOL_MAX", "5", "db_pool_max", 5),
    ("PAYGATE_WORKER_CONCURRENCY", "2", "worker_concurrency", 2),
    ("PAYGATE_ENV", "production", "environment", "production"),
    ("PAYGATE_JOB_LEASE_SECONDS", "12.5", "job_lease_seconds", 12.5),
    ("PAYGATE_JANITOR_INTERVAL", "0.2", "janitor_interval_seconds", 0.2),
    ("PAYGATE_REDISPATCH_AFTER", "7", "redispatch_after_seconds", 7.0),
    ("PAYGATE_LOST_AFTER", "3", "lost_after_seconds", 3.0),
    ("PAYGATE_HEARTBEAT_INTERVAL", "1", "heartbeat_interval_seconds", 1.0),
    ("PAYGATE_HEARTBEAT_TTL", "4", "heartbeat_ttl_seconds", 4.0),
    ("PAYGATE_WEBHOOK_TIMEOUT", "2", "webhook_timeout_seconds", 2.0),
    ("PAYGATE_PROBE_TIMEOUT", "0.5", "probe_timeout_seconds", 0.5),
    ("PAYGATE_DISABLE_PLUGINS", "a,b", "disable_plugins", ("a", "b")),
    ("PAYGATE_ALLOW_PRIVATE_WEBHOOKS", "true", "allow_private_webhook_urls", True),
    ("PAYGATE_MAX_BODY_BYTES", "1024", "max_body_bytes", 1024),
    ("PAYGATE_SECRET_KEY", "s3cret", "secret_key", "s3cret"),
    ("PAYGATE_STATE_DIR", "/tmp/pg", "state_dir", "/tmp/pg"),
]


@pytest.mark.parametrize(("variable", "raw", "setting", "expected"), VARIABLES)
def test_each_variable_sets_its_setting(variable, raw, setting, expected):
    assert getattr(Settings.from_env({variable: raw}), setting) == expected


def test_an_empty_environment_gives_the_declared_defaults():
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize("raw", ["True", "1", "yes", "TRUE", ""])
def test_true_only_flags_are_true_for_the_string_true_alone(raw):
    settings = Settings.from_env({"TEST_MODE": raw, "PAYGATE_ALLOW_PRIVATE_WEBHOOKS": raw})
    assert settings.test_mode is False and settings.allow_private_webhook_urls is False


@pytest.mark.parametrize("raw", ["true", "False", "0", "no", ""])
def test_payment_success_is_true_unless_the_string_false(raw):
    assert Settings.from_env({"TEST_PAYMENT_SUCCESS": raw}).test_payment_success is True


@pytest.mark.parametrize(
    ("variable", "raw", "message"),
    [
        ("PORT", "eighty", "PORT must be an integer, got 'eighty'"),
        ("PAYGATE_DB_POOL_MAX", "1.5", "PAYGATE_DB_POOL_MAX must be an integer, got '1.5'"),
        ("UPI_SUCCESS_RATE", "most", "UPI_SUCCESS_RATE must be a number, got 'most'"),
        ("PAYGATE_WEBHOOK_TIMEOUT", "5s", "PAYGATE_WEBHOOK_TIMEOUT must be a number, got '5s'"),
        (
            "PAYGATE_PROBE_TIMEOUT",
            "0",
            "PAYGATE_PROBE_TIMEOUT must be more than 0 seconds, got '0'",
        ),
        (
            "PAYGATE_PAYMENT_BATCH",
            "0",
            "PAYGATE_PAYMENT_BATCH must be 1 or more (1: one job at a time), got '0'",
        ),
        (
            "PAYGATE_WEBHOOK_BATCH",
            "-1",
            "PAYGATE_WEBHOOK_BATCH must be 1 or more (1: one job at a time), got '-1'",
        ),
        ("PAYGATE_WEBHOOK_BATCH", "1.5", "PAYGATE_WEBHOOK_BATCH must be an integer, got '1.5'"),
    ],
)
def test_a_bad_number_names_its_variable(variable, raw, message):
    with pytest.raises(ValueError) as raised:
        Settings.from_env({variable: raw})
    assert str(raised.value) == message


@pytest.mark.parametrize("variable", ["PORT", "PAYGATE_JOB_LEASE_SECONDS"])
def test_a_blank_number_means_the_default(variable):
    assert Settings.from_env({variable: "  "}) == Settings()


def test_the_test_retry_schedule_also_shortens_the_janitor_interval():
    quick = Settings.from_env({"WEBHOOK_RETRY_INTERVALS_TEST": "true"})
    assert quick.retry_delays == RETRY_DELAYS_TEST and quick.janitor_interval_seconds == 0.25
    assert Settings.from_env({}).retry_delays == RETRY_DELAYS_PRODUCTION
    assert quick.max_webhook_attempts == len(RETRY_DELAYS_TEST) == 5


def test_allowed_origins_are_the_apps_then_the_extra_ones_without_repeats():
    settings = Settings.from_env(
        {"PAYGATE_CORS_ORIGINS": "https://shop.example,http://localhost:3000"}
    )
    # (then, in development, their other loopback names: tests/test_cors.py)
    assert settings.allowed_origins[:3] == (
        "http://localhost:3000",
        "http://localhost:3001",
        "https://shop.example",
    )


def test_production_is_named_by_paygate_env():
    assert Settings.from_env({"PAYGATE_ENV": "production"}).is_production
    assert not Settings.from_env({}).is_production
