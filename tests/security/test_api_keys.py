"""API keys: secrets stored only as keyed hashes (plaintexts from before migration 004 hashed at
start-up), several live keys per merchant, rotation with an overlap, a credential cache without
plaintext secrets, and the dashboard's masked secret and new-key form."""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from paygate.config import TEST_MERCHANT_ID
from paygate.db import Database
from paygate.db.migrate import available
from paygate.errors import AuthenticationFailed
from paygate.services import Context, keys, merchants
from paygate.web.dashboard.app import create_app as create_dashboard
from paygate.wiring import prepare_database
from tests.dashboard_client import DashboardClient, by_test_id
from tests.fixtures import AUTH, TEST_KEY, TEST_SECRET, make_settings

UNAUTHORIZED = {"code": "AUTHENTICATION_ERROR", "description": "Invalid API credentials"}


def is_unauthorized(result) -> bool:
    error = result.json["error"]
    return result.status_code == 401 and {k: error[k] for k in UNAUTHORIZED} == UNAUTHORIZED


def auth(key: str, secret: str) -> dict[str, str]:
    return {"X-Api-Key": key, "X-Api-Secret": secret}


def stored_text(conn) -> str:
    """Every value of every row of the tables that hold merchants and keys, as text."""
    rows = conn.execute(
        "SELECT row_to_json(m)::text AS r FROM merchants m "
        "UNION ALL SELECT row_to_json(k)::text FROM api_keys k"
    ).fetchall()
    return "\n".join(row["r"] for row in rows)


def assert_not_stored(ctx, secret: str) -> None:
    with ctx.db.connection() as conn:
        text = stored_text(conn)
    for form in (
        secret,
        hashlib.sha256(secret.encode()).hexdigest(),
        hashlib.sha1(secret.encode()).hexdigest(),
        hashlib.md5(secret.encode()).hexdigest(),
    ):
        assert form not in text


def orders_status(api, headers) -> int:
    return api.simulate_get("/api/v1/orders/order_missing000000", headers=headers).status_code


# -- stored only as keyed hashes -------------------------------------------------------------


def test_created_and_rotated_secrets_are_stored_only_as_keyed_hashes(ctx):
    merchant, issued = merchants.create(ctx, "Shop", "shop@example.com")
    _, rotated, _ = merchants.rotate_key(ctx, merchant, 60)
    for secret in (issued.api_secret, rotated.api_secret):
        assert_not_stored(ctx, secret)
    with ctx.db.connection() as conn:
        rows = conn.execute(
            "SELECT api_key, secret_hash, legacy_secret FROM api_keys WHERE merchant_id = %s",
            (merchant.id,),
        ).fetchall()
    stored = {row["api_key"]: row["secret_hash"] for row in rows}
    assert all(row["legacy_secret"] is None for row in rows)
    assert stored[issued.key.api_key] == keys.keyed_hash(
        ctx, "api-secret", issued.api_secret.encode()
    )
    assert stored[rotated.key.api_key] == merchants.secret_hash(ctx, rotated.api_secret)


def _scratch_database(database_url: str) -> tuple[str, str]:
    name = f"paygate_keys_{secrets.token_hex(4)}"
    admin = make_conninfo(database_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, make_conninfo(database_url, dbname=name)


def _drop_database(database_url: str, name: str) -> None:
    admin = make_conninfo(database_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_plaintext_secret_stored_by_the_old_code_is_hashed_at_start_up(database_url):
    name, url = _scratch_database(database_url)
    old_secret = "secret_old_" + secrets.token_hex(8)
    try:
        # The schema and a merchant exactly as the code before migration 004 left them.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            for migration in available():
                if migration.version <= 3:
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
            conn.execute(
                """INSERT INTO merchants (id, name, email, api_key, api_secret, webhook_secret)
                   VALUES (gen_random_uuid(), 'Old Shop', 'old@example.com', 'key_old_1', %s,
                           'whsec_old')""",
                (old_secret,),
            )
        settings = make_settings(DATABASE_URL=url)
        prepare_database(settings)  # the first start of the new code

        db = Database(url, min_size=1, max_size=2, name="tests-keys").open()
        try:
            ctx = Context(settings=settings, db=db, plugins=None, dispatcher=None)
            with db.connection() as conn:
                text = stored_text(conn)
                legacy = conn.execute(
                    "SELECT count(*) AS n FROM api_keys WHERE legacy_secret IS NOT NULL"
                ).fetchone()["n"]
                columns = conn.execute(
                    """SELECT column_name FROM information_schema.columns
                        WHERE table_name = 'merchants'"""
                ).fetchall()
            assert legacy == 0 and "api_secret" not in {c["column_name"] for c in columns}
            assert old_secret not in text and TEST_SECRET not in text
            assert merchants.secret_hash(ctx, old_secret) in text
            # ... and the old credentials (and the seeded test merchant's) still work.
            merchants.forget_cached()
            assert merchants.authenticate(ctx, "key_old_1", old_secret).email == "old@example.com"
            assert merchants.authenticate(ctx, TEST_KEY, TEST_SECRET).id == TEST_MERCHANT_ID
        finally:
            merchants.forget_cached()
            db.close()
    finally:
        _drop_database(database_url, name)


def test_a_plaintext_row_written_after_start_up_is_hashed_on_first_use(ctx, api):
    # The test fixtures' reset seeds the test merchant through the repository, which has no
    # server key: its secret waits as a legacy plaintext until the key is first looked up.
    with ctx.db.connection() as conn:
        before = conn.execute("SELECT legacy_secret FROM api_keys WHERE api_key = %s", (TEST_KEY,))
        assert before.fetchone()["legacy_secret"] == TEST_SECRET
    assert orders_status(api, AUTH) == 404  # authenticated (the order is missing)
    assert_not_stored(ctx, TEST_SECRET)


# -- the credential cache and the hot path ---------------------------------------------------


def test_the_credential_cache_never_holds_a_plaintext_secret(ctx):
    merchant, issued = merchants.create(ctx, "Shop", "shop@example.com")
    merchants.authenticate(ctx, issued.key.api_key, issued.api_secret)
    merchants.authenticate(ctx, TEST_KEY, TEST_SECRET)
    for entry in merchants._cache.values():
        values = [getattr(entry, name) for name in entry.__slots__]
        shown = repr(values) + repr(vars(entry.merchant))
        assert issued.api_secret not in shown and TEST_SECRET not in shown
    assert not hasattr(merchant, "api_secret")


def test_a_cached_key_is_checked_without_a_query(ctx):
    merchants.authenticate(ctx, TEST_KEY, TEST_SECRET)  # looks the key up, records its use
    queries = []
    real = ctx.db.connection

    def counting():
        queries.append(1)
        return real()

    ctx.db.connection = counting
    try:
        for _ in range(20):
            merchants.authenticate(ctx, TEST_KEY, TEST_SECRET)
        with pytest.raises(AuthenticationFailed):
            merchants.authenticate(ctx, TEST_KEY, "secret_wrong")
    finally:
        del ctx.db.connection
    assert queries == []


def test_last_use_is_recorded_at_most_once_a_minute(ctx, api):
    merchant, issued = merchants.create(ctx, "Shop", "shop@example.com")
    headers = auth(issued.key.api_key, issued.api_secret)

    def last_used():
        (key,) = merchants.keys_of(ctx, merchant)
        return key.last_used_at

    assert last_used() is None
    assert orders_status(api, headers) == 404
    first = last_used()
    assert first is not None
    merchants.forget_cached()  # even a fresh lookup does not write again within the minute
    for _ in range(3):
        assert orders_status(api, headers) == 404
    assert last_used() == first


# -- several keys, rotation with an overlap -----------------------------------------------------


def test_the_old_key_works_during_the_overlap_and_is_refused_after_it(ctx, api):
    merchant, old = merchants.create(ctx, "Shop", "shop@example.com")
    start = datetime.now(UTC)
    _, new, retired = merchants.rotate_key(ctx, merchant, 3600, now=start)
    assert [k.api_key for k in retired] == [old.key.api_key]
    assert merchants.get(ctx, merchant.id).api_key == new.key.api_key  # the current key
    # Both keys are live now: two live keys of one merchant.
    assert orders_status(api, auth(old.key.api_key, old.api_secret)) == 404
    assert orders_status(api, auth(new.key.api_key, new.api_secret)) == 404
    live = [k for k in merchants.keys_of(ctx, merchant) if k.live_at(start)]
    assert len(live) == 2
    # The clock moves: within the overlap the old key works, after it it does not.
    t0 = start.timestamp()
    assert merchants.authenticate(ctx, old.key.api_key, old.api_secret, now=t0 + 3599).id == (
        merchant.id
    )
    with pytest.raises(AuthenticationFailed):
        merchants.authenticate(ctx, old.key.api_key, old.api_secret, now=t0 + 3600)
    merchants.forget_cached()  # also after a fresh lookup (another process)
    with pytest.raises(AuthenticationFailed):
        merchants.authenticate(ctx, old.key.api_key, old.api_secret, now=t0 + 3601)
    assert merchants.authenticate(ctx, new.key.api_key, new.api_secret, now=t0 + 7200)


def test_a_tiny_overlap_ends_on_time_through_the_api(ctx, api):
    merchant, old = merchants.create(ctx, "Shop", "shop@example.com")
    headers = auth(old.key.api_key, old.api_secret)
    assert orders_status(api, headers) == 404  # cached now
    merchants.rotate_key(ctx, merchant, 0.3)
    assert orders_status(api, headers) == 404
    time.sleep(0.35)
    refused = api.simulate_get("/api/v1/orders/order_missing000000", headers=headers)
    assert is_unauthorized(refused)


def test_overlap_zero_revokes_the_old_key_at_once(ctx, api):
    merchant, old = merchants.create(ctx, "Shop", "shop@example.com")
    headers = auth(old.key.api_key, old.api_secret)
    assert orders_status(api, headers) == 404
    _, new, retired = merchants.rotate_key(ctx, merchant, 0)
    assert retired[0].revoked_at is not None
    refused = api.simulate_get("/api/v1/orders/order_missing000000", headers=headers)
    assert is_unauthorized(refused)
    assert orders_status(api, auth(new.key.api_key, new.api_secret)) == 404


@pytest.mark.parametrize("case", ["unknown", "wrong secret", "revoked", "inactive merchant"])
def test_a_disabled_or_unknown_key_answers_401_with_the_contract_message(ctx, api, case):
    merchant, issued = merchants.create(ctx, "Shop", "shop@example.com")
    key, secret = issued.key.api_key, issued.api_secret
    assert orders_status(api, auth(key, secret)) == 404
    if case == "unknown":
        key = "key_live_unknown000000000000000"
    elif case == "wrong secret":
        secret = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    elif case == "revoked":
        merchants.rotate_key(ctx, merchant, 0)
    else:
        with ctx.db.connection() as conn:
            conn.execute("UPDATE merchants SET is_active = false WHERE id = %s", (merchant.id,))
        merchants.forget_cached()  # as after CREDENTIAL_CACHE_SECONDS in a running process
    refused = api.simulate_get("/api/v1/orders/order_missing000000", headers=auth(key, secret))
    assert is_unauthorized(refused)


def test_the_checkout_accepts_any_live_key_of_the_orders_merchant(ctx):
    merchant, old = merchants.create(ctx, "Shop", "shop@example.com")
    _, new, _ = merchants.rotate_key(ctx, merchant, 3600)
    assert merchants.owns_key(ctx, merchant.id, old.key.api_key)
    assert merchants.owns_key(ctx, merchant.id, new.key.api_key)
    assert not merchants.owns_key(ctx, merchant.id, TEST_KEY)
    assert not merchants.owns_key(ctx, merchant.id, "key\x00" + "x" * 100)


# -- the dashboard ------------------------------------------------------------------------------


def test_development_dashboard_shows_the_published_test_secret(ctx):
    client = DashboardClient(create_dashboard(ctx))
    client.login()
    found = by_test_id(client.get("/dashboard").text)
    assert found["api-key"][0].text == TEST_KEY
    assert found["api-secret"][0].text == TEST_SECRET


def test_another_merchant_sees_a_masked_secret_and_can_make_a_new_key_shown_once(ctx):
    merchant, issued = merchants.create(ctx, "Shop", "shop@example.com")
    from paygate.services import auth as auth_service

    auth_service.set_password(ctx, merchant, "", "a long password", "a long password")
    client = DashboardClient(create_dashboard(ctx))
    client.login("shop@example.com", "a long password")
    home = client.get("/dashboard").text
    found = by_test_id(home)
    assert found["api-key"][0].text == issued.key.api_key
    assert issued.api_secret not in home and "•" in found["api-secret"][0].text

    answer = client.post("/dashboard/keys", {"overlap": "3600"})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    shown = by_test_id(answer.text)
    new_key, new_secret = shown["api-key"][0].text, shown["api-secret"][0].text
    assert new_key != issued.key.api_key and new_secret.startswith("secret_live_")
    assert merchants.authenticate(ctx, new_key, new_secret).id == merchant.id
    assert merchants.authenticate(ctx, issued.key.api_key, issued.api_secret).id == merchant.id
    assert_not_stored(ctx, new_secret)
    # Shown once: the next page has the new key and a masked secret again.
    again = client.get("/dashboard").text
    assert new_secret not in again and by_test_id(again)["api-key"][0].text == new_key
    account = by_test_id(client.get("/dashboard/account").text)
    assert len(account["api-key-row"]) == 2  # both keys work during the overlap


def test_the_new_key_form_needs_the_csrf_token_and_a_known_overlap(ctx):
    client = DashboardClient(create_dashboard(ctx))
    client.login()
    client.get("/dashboard")
    assert client.post("/dashboard/keys", {"overlap": "3600"}, csrf="forged").status_code == 403
    client.get("/dashboard")
    assert client.post("/dashboard/keys", {"overlap": "999999999"}).status_code == 400
    assert merchants.get(ctx, TEST_MERCHANT_ID).api_key == TEST_KEY  # nothing changed
