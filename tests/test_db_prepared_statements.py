"""PAYGATE_DB_PREPARE_THRESHOLD reaches every connection: pooled ones (as each process builds
its pool) and single ones (migrations, CLI). Negative never prepares, which is what a
transaction-mode PgBouncer needs; the default prepares a statement run often."""

from __future__ import annotations

import pytest

from paygate.db import connect, prepare_threshold
from paygate.wiring import build_context
from tests.fixtures import make_settings

REPEATS = 12  # more than the default threshold (5), so the default prepares


def prepared_after_repeats(conn) -> int:
    """Run one query REPEATS times on ``conn``; how many statements are prepared on it."""
    for _ in range(REPEATS):
        conn.execute("SELECT count(*) FROM merchants WHERE email = %s", ("nobody@example.com",))
    return conn.execute("SELECT count(*) AS n FROM pg_prepared_statements").fetchone()["n"]


def pooled_prepared(shared_db, **env: str) -> int:
    """The count on a connection of the pool ``build_context`` builds from these settings."""
    ctx = build_context(make_settings(**env), role="prepare-test")
    try:
        with ctx.db.connection() as conn:
            return prepared_after_repeats(conn)
    finally:
        ctx.db.close()


@pytest.mark.unit
def test_a_negative_setting_means_never_prepare_and_others_pass_through():
    assert prepare_threshold(-1) is None
    assert prepare_threshold(-20) is None
    assert prepare_threshold(0) == 0
    assert prepare_threshold(5) == 5


def test_a_negative_threshold_leaves_no_prepared_statement_on_pooled_connections(shared_db):
    assert pooled_prepared(shared_db, PAYGATE_DB_PREPARE_THRESHOLD="-1") == 0


def test_the_default_threshold_prepares_a_statement_run_often_on_pooled_connections(shared_db):
    assert make_settings().db_prepare_threshold == 5
    assert pooled_prepared(shared_db) >= 1


def test_single_connections_follow_the_threshold(shared_db, database_url):
    never = prepare_threshold(make_settings(PAYGATE_DB_PREPARE_THRESHOLD="-1").db_prepare_threshold)
    with connect(database_url, prepare_threshold=never) as conn:
        assert prepared_after_repeats(conn) == 0
    with connect(database_url) as conn:
        assert prepared_after_repeats(conn) >= 1
