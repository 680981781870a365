"""Dashboard sign-in, sessions and CSRF, in-process against real PostgreSQL (falcon.testing)."""

from __future__ import annotations

import pytest

from paygate.config import TEST_MERCHANT_ID
from paygate.services import auth, keys, merchants
from paygate.web.dashboard.app import create_app
from tests.dashboard_client import DashboardClient
from tests.fixtures import OTHER_MERCHANT_ID

PAGES = [
    "/dashboard",
    "/dashboard/transactions",
    "/dashboard/transactions/pay_AAAAAAAAAAAAAAAA",
    "/dashboard/webhooks",
    "/dashboard/webhooks/0b6f7a51-4a7c-4bb6-a7cf-0d2f0f5d1a11",
    "/dashboard/docs",
    "/dashboard/account",
]


@pytest.fixture
def app(ctx):
    return create_app(ctx)


@pytest.fixture
def client(app) -> DashboardClient:
    return DashboardClient(app)


@pytest.mark.parametrize("path", PAGES)
def test_a_page_without_a_session_redirects_to_login(client, path):
    result = client.get(path)
    assert result.status_code == 303
    assert result.headers["location"] == "/login?next=" + path


def test_a_form_post_without_a_session_redirects_to_login_and_changes_nothing(client, ctx):
    client.get("/login")
    result = client.post("/dashboard/webhooks", {"action": "save", "webhook_url": "http://x.io"})
    assert result.status_code == 303 and result.headers["location"] == "/login"
    assert merchants.get(ctx, TEST_MERCHANT_ID).webhook_url is None


def test_root_goes_to_login_and_to_the_dashboard_once_signed_in(client):
    assert client.get("/").headers["location"] == "/login"
    client.login()
    assert client.get("/").headers["location"] == "/dashboard"
    assert client.get("/login").headers["location"] == "/dashboard"


def test_login_page_has_the_contract_test_ids(client):
    page = client.get("/login").text
    for test_id in ("login-form", "email-input", "password-input", "login-button"):
        assert f'data-test-id="{test_id}"' in page


def test_seeded_merchant_signs_in_with_any_password_until_one_is_set(client, app, ctx):
    client.login(password="whatever-you-like")
    assert client.get("/dashboard").status_code == 200
    other_browser = DashboardClient(app)
    other_browser.login(password="another guess")

    client.get("/dashboard/account")
    saved = client.post(
        "/dashboard/account",
        {"new_password": "correct horse battery", "confirm_password": "correct horse battery"},
    )
    assert saved.status_code == 303
    assert client.get("/dashboard").status_code == 200  # this session goes on
    assert other_browser.get("/dashboard").status_code == 303  # every other one ended
    stored = merchants.get(ctx, TEST_MERCHANT_ID).password_hash
    assert stored.startswith("scrypt$") and "correct horse" not in stored

    fresh = DashboardClient(app)
    fresh.get("/login")
    refused = fresh.post("/login", {"email": "test@example.com", "password": "whatever-you-like"})
    assert refused.status_code == 401
    assert "Invalid email or password" in refused.text
    fresh.login(password="correct horse battery")
    assert fresh.get("/dashboard").status_code == 200


def test_changing_a_set_password_needs_the_current_one(client, ctx):
    merchant = merchants.get(ctx, TEST_MERCHANT_ID)
    auth.set_password(ctx, merchant, "", "first password", "first password")
    client.login(password="first password")
    client.get("/dashboard/account")
    wrong = client.post(
        "/dashboard/account",
        {
            "current_password": "nope",
            "new_password": "second pass",
            "confirm_password": "second pass",
        },
    )
    assert wrong.status_code == 400 and "Current password is incorrect" in wrong.text
    short = client.post(
        "/dashboard/account",
        {
            "current_password": "first password",
            "new_password": "short",
            "confirm_password": "short",
        },
    )
    assert short.status_code == 400 and "at least 8 characters" in short.text
    assert auth.verify_password(
        "first password", merchants.get(ctx, TEST_MERCHANT_ID).password_hash
    )


def test_unknown_email_and_a_merchant_without_a_password_cannot_sign_in(client, other_merchant):
    client.get("/login")
    for email in ("nobody@example.com", other_merchant.email):
        result = client.post("/login", {"email": email, "password": "anything"})
        assert result.status_code == 401
        assert "Invalid email or password" in result.text
        assert "pg_session" not in client.cookies


def test_production_mode_closes_the_open_test_sign_in(make_ctx):
    client = DashboardClient(create_app(make_ctx(PAYGATE_ENV="production")))
    client.get("/login")
    result = client.post("/login", {"email": "test@example.com", "password": "anything"})
    assert result.status_code == 401


def test_form_posts_without_a_valid_csrf_token_are_refused(client, ctx, other_merchant):
    client.login()
    client.get("/dashboard/webhooks")
    form = {"action": "save", "webhook_url": "https://shop.example.com/hooks"}
    missing = client.post("/dashboard/webhooks", form, csrf=False)
    assert missing.status_code == 403 and "Reload the page" in missing.text
    forged = client.post("/dashboard/webhooks", form, csrf="A" * 43)
    assert forged.status_code == 403
    # A token minted for another browser (another nonce) or another merchant is no good either.
    stolen = auth.csrf_token(ctx, "someone-elses-nonce", TEST_MERCHANT_ID)
    assert client.post("/dashboard/webhooks", form, csrf=stolen).status_code == 403
    other = auth.csrf_token(ctx, client.cookies["pg_csrf"], OTHER_MERCHANT_ID)
    assert client.post("/dashboard/webhooks", form, csrf=other).status_code == 403
    assert merchants.get(ctx, TEST_MERCHANT_ID).webhook_url is None
    client.get("/dashboard/webhooks")
    assert client.post("/dashboard/webhooks", form).status_code == 303
    assert merchants.get(ctx, TEST_MERCHANT_ID).webhook_url == form["webhook_url"]


def test_sign_in_and_sign_out_need_the_csrf_token_too(client):
    client.get("/login")
    result = client.post("/login", {"email": "test@example.com", "password": "x"}, csrf=False)
    assert result.status_code == 403 and "pg_session" not in client.cookies
    client.login()
    assert client.post("/logout", {}, csrf=False).status_code == 403
    client.get("/dashboard")
    assert client.post("/logout", {}).status_code == 303
    assert client.get("/dashboard").status_code == 303


def test_sign_out_ends_the_session_for_every_copy_of_its_cookie(client, app):
    """A copied cookie (another tab, a stolen one) stops working the moment its owner signs out."""
    client.login()
    copy = DashboardClient(app)
    copy.cookies = dict(client.cookies)
    assert copy.get("/dashboard").status_code == 200
    client.get("/dashboard/account")
    assert client.post("/logout", {}).status_code == 303
    refused = copy.get("/dashboard")
    assert refused.status_code == 303 and refused.headers["location"] == "/login?next=/dashboard"
    assert "pg_session" not in copy.cookies  # the dead cookie is cleared too


def test_sign_out_everywhere_else_keeps_this_session(client, app, ctx, other_merchant):
    client.login()
    laptop, phone = DashboardClient(app), DashboardClient(app)
    laptop.login()
    phone.login()
    other = DashboardClient(app)
    auth.set_password(ctx, other_merchant, "", "other password", "other password")
    other.login(email=other_merchant.email, password="other password")

    page = client.get("/dashboard/account").text
    assert "Signed in on 3 browsers, this one included." in page
    ended = client.post("/dashboard/account/sessions", {})
    assert ended.status_code == 303
    assert "Signed out of 2 other sessions." in client.get("/dashboard/account").text
    assert "Signed in on this browser only." in client.last_html
    assert 'data-test-id="end-other-sessions"' not in client.last_html
    assert client.get("/dashboard").status_code == 200
    assert laptop.get("/dashboard").status_code == 303
    assert phone.get("/dashboard").status_code == 303
    assert other.get("/dashboard").status_code == 200  # another merchant's sessions live on
    client.get("/dashboard/account")
    assert client.post("/dashboard/account/sessions", {}, csrf=False).status_code == 403


def test_a_correctly_signed_token_without_a_live_session_is_refused(client, ctx):
    """The row, not the signature alone, makes a session: a token minted with the key for a
    session that was never started (or has ended, or expired on the server) is refused."""
    made_up = {"s": "never-started", "m": TEST_MERCHANT_ID, "e": 2**40}
    client.cookies["pg_session"] = auth.sign(ctx, "session", made_up)
    assert client.get("/dashboard").status_code == 303
    for bad_id in ("not-a-uuid", "0" * 36):
        client.cookies["pg_session"] = auth.sign(ctx, "session", {**made_up, "m": bad_id})
        assert client.get("/dashboard").status_code == 303
    client.login()
    assert client.get("/dashboard").status_code == 200
    with ctx.db.connection() as conn:
        conn.execute("UPDATE dashboard_sessions SET expires_at = now() - interval '1 second'")
    assert client.get("/dashboard").status_code == 303


def test_sessions_store_only_a_hash_of_their_id_and_old_ones_are_forgotten(client, ctx):
    client.login()
    token = client.cookies["pg_session"]
    session_id = auth.unsign(ctx, "session", token)["s"]
    with ctx.db.connection() as conn:
        rows = conn.execute("SELECT id_hash FROM dashboard_sessions").fetchall()
        assert [r["id_hash"] for r in rows] == [auth._session_id_hash(session_id)]
        assert session_id not in str(rows)
        conn.execute(
            "UPDATE dashboard_sessions SET expires_at = now() - interval '25 hours', "
            "created_at = now() - interval '37 hours'"
        )
    client.login()  # a new sign-in forgets that merchant's sessions ended over a day ago
    with ctx.db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM dashboard_sessions").fetchone()["n"] == 1


def test_session_cookie_is_signed_httponly_and_samesite(client):
    client.get("/login")
    result = client.post("/login", {"email": "test@example.com", "password": "x"})
    session = result.cookies["pg_session"]
    assert session.http_only and session.same_site.lower() == "lax" and session.path == "/"
    assert result.cookies["pg_csrf"].http_only
    body, _, mac = session.value.partition(".")
    assert body and mac
    client.cookies["pg_session"] = body + "." + ("A" if mac[0] != "A" else "B") + mac[1:]
    assert client.get("/dashboard").status_code == 303  # tampered: not signed in


def test_sessions_work_in_every_process_and_after_a_restart(ctx, make_ctx):
    """The key comes from the database when PAYGATE_SECRET_KEY is unset: a new app (another
    gunicorn process, or the same one restarted) accepts the session."""
    first = DashboardClient(create_app(ctx))
    first.login()
    keys._keys.clear()  # as in a fresh process
    second = DashboardClient(create_app(make_ctx()))
    second.cookies = dict(first.cookies)
    assert second.get("/dashboard").status_code == 200
    with ctx.db.connection() as conn:
        stored = conn.execute("SELECT count(*) AS n FROM dashboard_secrets").fetchone()["n"]
    assert stored == 1
    # With PAYGATE_SECRET_KEY set, that key signs: the database's key's sessions stop working.
    keyed = DashboardClient(create_app(make_ctx(PAYGATE_SECRET_KEY="k" * 40)))
    keyed.cookies = dict(first.cookies)
    assert keyed.get("/dashboard").status_code == 303


def test_login_next_stays_inside_the_dashboard(client):
    client.get("/login?next=/dashboard/webhooks")
    result = client.post(
        "/login", {"email": "test@example.com", "password": "x", "next": "/dashboard/webhooks"}
    )
    assert result.headers["location"] == "/dashboard/webhooks"
    for evil in ("//evil.example.com", "https://evil.example.com", "/dashboard//evil.com"):
        fresh = DashboardClient(client.client.app)
        fresh.get("/login")
        result = fresh.post("/login", {"email": "test@example.com", "password": "x", "next": evil})
        assert result.headers["location"] == "/dashboard"


def test_passwords_are_scrypt_with_a_salt_per_hash():
    first, second = auth.hash_password("same secret"), auth.hash_password("same secret")
    assert first != second and first.split("$")[0] == "scrypt"
    assert auth.verify_password("same secret", first) and auth.verify_password(
        "same secret", second
    )
    assert not auth.verify_password("Same secret", first)
    assert not auth.verify_password("same secret", "md5$abc") and not auth.verify_password(
        "x", None
    )


def test_pages_send_security_headers(client):
    result = client.get("/login")
    assert "frame-ancestors 'none'" in result.headers["content-security-policy"]
    assert result.headers["x-frame-options"] == "DENY"
    assert result.headers["cache-control"] == "no-store"
    static = client.get("/static/app.css")
    assert static.status_code == 200 and "immutable" in static.headers["cache-control"]
    assert client.get("/static/nope.css").status_code == 404


def test_repeated_failed_sign_ins_pause_that_email_from_that_client(client, ctx, other_merchant):
    # Issue 15 replaced the per-email lock-out with the abuse limiter's windows (per client,
    # per account from a client, per account): tests/security/test_sign_in.py covers the rest.
    auth.set_password(ctx, other_merchant, "", "the right one", "the right one")
    limit = ctx.settings.limit_sign_in_account_ip[0]
    client.get("/login")
    for _ in range(limit):
        guess = client.post("/login", {"email": "OTHER@example.com", "password": "guess"})
        assert guess.status_code == 401
    locked = client.post("/login", {"email": "other@example.com", "password": "the right one"})
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
    assert int(locked.headers["retry-after"]) > 0
    assert "pg_session" not in client.cookies
    client.login()  # another email is not affected
    with ctx.db.connection() as conn:  # the window ends
        conn.execute("UPDATE rate_limits SET window_end = now() - interval '16 minutes'")
    fresh = DashboardClient(client.client.app)
    fresh.login("other@example.com", "the right one")
    assert fresh.get("/dashboard").status_code == 200


def test_head_requests_answer_like_get_without_a_body(client):
    root = client.client.simulate_head("/")
    assert root.status_code == 303 and root.headers["location"] == "/login" and root.text == ""
    assert client.client.simulate_head("/login").status_code == 200
    assert client.client.simulate_head("/static/app.css").status_code == 200
