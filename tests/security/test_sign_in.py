"""Issue 15, dashboard sign-in: atomic per-client and per-account windows with growing back-off
(no lock-out of a known email), the same work (one scrypt verification) whether or not the
account exists or has a password, OWASP scrypt parameters with re-hash on sign-in, and a
minimum length plus a refusal of the most common passwords.

The work per attempt is checked by counting scrypt calls, never by wall-clock timing.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from paygate.config import TEST_MERCHANT_ID
from paygate.errors import AuthenticationFailed, BadRequest, RateLimited
from paygate.services import auth, merchants
from paygate.services.common_passwords import COMMON_PASSWORDS
from paygate.web.dashboard.app import create_app
from tests.dashboard_client import DashboardClient

PASSWORD = "a long unusual phrase"
ATTACKER = "203.0.113.66"
OWNER = "198.51.100.10"


@pytest.fixture
def scrypt_calls(monkeypatch) -> list[int]:
    """Counts calls of the one place scrypt runs (the real function still does the work)."""
    auth._dummy()  # the dummy hash is made once per process: not part of any attempt
    calls: list[int] = []
    lock = threading.Lock()
    real = auth._scrypt

    def counting(password, salt, n, r, p):
        with lock:
            calls.append(n)
        return real(password, salt, n, r, p)

    monkeypatch.setattr(auth, "_scrypt", counting)
    return calls


@pytest.fixture
def owner(ctx, other_merchant):
    return auth.set_password(ctx, other_merchant, "", PASSWORD, PASSWORD)


def attempt(ctx, email: str, password: str, client: str = ATTACKER) -> str:
    try:
        auth.sign_in(ctx, email, password, client)
    except RateLimited:
        return "limited"
    except AuthenticationFailed:
        return "refused"
    return "signed in"


# -- the same work whatever the account ----------------------------------------------------------


def test_every_admitted_attempt_costs_exactly_one_scrypt(ctx, other_merchant, scrypt_calls):
    cases = [
        ("nobody@example.com", "guess one"),  # unknown account
        (other_merchant.email, "guess one"),  # known, no password set
        ("test@example.com", "anything"),  # the development test merchant's open sign-in
    ]
    for email, password in cases:
        before = len(scrypt_calls)
        attempt(ctx, email, password, client=f"192.0.2.{len(scrypt_calls)}")
        assert len(scrypt_calls) - before == 1, email
    auth.set_password(ctx, other_merchant, "", PASSWORD, PASSWORD)
    for password, outcome in (("wrong guess", "refused"), (PASSWORD, "signed in")):
        before = len(scrypt_calls)
        assert attempt(ctx, other_merchant.email, password, client="192.0.2.99") == outcome
        assert len(scrypt_calls) - before == 1
    assert set(scrypt_calls) == {2**17}  # every one at today's parameters


def test_the_development_test_merchant_still_signs_in_with_any_password(ctx, make_ctx):
    assert attempt(ctx, "test@example.com", "whatever it is") == "signed in"
    production = make_ctx(PAYGATE_ENV="production", PAYGATE_SECRET_KEY="x" * 40)
    assert attempt(production, "test@example.com", "whatever it is") == "refused"


# -- scrypt parameters and re-hash ---------------------------------------------------------------


def test_hashes_use_owasp_scrypt_parameters():
    scheme, n, r, p, _salt, _digest = auth.hash_password("some password").split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**17, 8, 1)


def old_hash(password: str) -> str:
    """A hash as the gateway made them before issue 15 (N=2**14)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return f"scrypt${2**14}$8$1${b64(salt)}${b64(digest)}"


def test_an_old_hash_is_rehashed_on_a_successful_sign_in(ctx, other_merchant):
    stored = old_hash(PASSWORD)
    with ctx.db.connection() as conn:
        conn.execute(
            "UPDATE merchants SET password_hash = %s WHERE id = %s", (stored, other_merchant.id)
        )
    merchants.forget_cached()
    assert auth.needs_rehash(stored)
    assert attempt(ctx, other_merchant.email, "not it") == "refused"
    assert merchants.get(ctx, other_merchant.id).password_hash == stored  # only on success
    signed_in = auth.sign_in(ctx, other_merchant.email, PASSWORD, OWNER)
    rehashed = merchants.get(ctx, other_merchant.id).password_hash
    assert rehashed != stored and rehashed == signed_in.password_hash
    assert rehashed.split("$")[1] == str(2**17) and not auth.needs_rehash(rehashed)
    assert auth.verify_password(PASSWORD, rehashed)
    assert attempt(ctx, other_merchant.email, PASSWORD, OWNER) == "signed in"


# -- atomic windows, back-off, no lock-out ---------------------------------------------------------


def test_parallel_guesses_never_get_more_checks_than_the_limit(ctx, owner, scrypt_calls):
    limit = ctx.settings.limit_sign_in_account_ip[0]
    assert limit == 10
    barrier = threading.Barrier(24)

    def guess(i: int) -> str:
        barrier.wait()
        return attempt(ctx, owner.email, f"guess number {i}")

    with ThreadPoolExecutor(24) as pool:
        outcomes = list(pool.map(guess, range(24)))
    assert outcomes.count("refused") == limit and outcomes.count("limited") == 24 - limit
    assert len(scrypt_calls) == limit


def test_a_spray_across_emails_is_limited_per_client(make_ctx, scrypt_calls):
    ctx = make_ctx(PAYGATE_LIMIT_SIGN_IN_IP="5/900")
    outcomes = [attempt(ctx, f"user{i}@example.com", "password1") for i in range(8)]
    assert outcomes == ["refused"] * 5 + ["limited"] * 3
    assert len(scrypt_calls) == 5
    assert attempt(ctx, "user0@example.com", "password1", client=OWNER) == "refused"


def test_a_guessing_client_cannot_lock_the_owner_out(ctx, owner):
    limit = ctx.settings.limit_sign_in_account_ip[0]
    for i in range(limit):
        assert attempt(ctx, owner.email, f"guess {i}") == "refused"
    assert attempt(ctx, owner.email, PASSWORD) == "limited"  # not even the right one, from here
    assert attempt(ctx, owner.email, PASSWORD, client=OWNER) == "signed in"


def test_guessing_from_many_clients_is_limited_per_account(make_ctx, owner):
    ctx = make_ctx(PAYGATE_LIMIT_SIGN_IN_ACCOUNT="4/900")
    outcomes = [attempt(ctx, owner.email, "guess", client=f"192.0.2.{i}") for i in range(6)]
    assert outcomes == ["refused"] * 4 + ["limited"] * 2


def test_back_off_grows_with_each_window_spent_over_the_limit(make_ctx, owner):
    ctx = make_ctx(PAYGATE_LIMIT_SIGN_IN_ACCOUNT_IP="2/60")

    def retry_after() -> int:
        with pytest.raises(RateLimited) as refused:
            auth.sign_in(ctx, owner.email, "guess", ATTACKER)
        assert "Too many failed sign-ins" in refused.value.description
        return refused.value.retry_after

    waits = []
    for _ in range(4):
        assert attempt(ctx, owner.email, "guess") == "refused"
        assert attempt(ctx, owner.email, "guess") == "refused"
        waits.append(retry_after())
        with ctx.db.connection() as conn:  # the window ends; the guessing goes on at once
            conn.execute("UPDATE rate_limits SET window_end = now() - interval '1 second'")
    assert waits[0] <= 60 and 60 < waits[1] <= 120 and 120 < waits[2] <= 240
    assert 240 < waits[3] <= 480
    # A quiet spell longer than the window starts over at the base window.
    with ctx.db.connection() as conn:
        conn.execute("UPDATE rate_limits SET window_end = now() - interval '1 hour'")
    for _ in range(2):
        attempt(ctx, owner.email, "guess")
    assert retry_after() <= 60


def test_the_dashboard_answers_429_with_retry_after_and_a_clear_message(ctx, owner):
    client = DashboardClient(create_app(ctx))
    client.get("/login")
    for _ in range(ctx.settings.limit_sign_in_account_ip[0]):
        form = {"email": owner.email, "password": "guess"}
        assert client.post("/login", form, remote_addr=ATTACKER).status_code == 401
    limited = client.post(
        "/login", {"email": owner.email, "password": PASSWORD}, remote_addr=ATTACKER
    )
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert "Too many failed sign-ins. Try again in" in limited.text
    elsewhere = DashboardClient(create_app(ctx))
    elsewhere.get("/login")
    ok = elsewhere.post("/login", {"email": owner.email, "password": PASSWORD}, remote_addr=OWNER)
    assert ok.status_code == 303 and "pg_session" in elsewhere.cookies


# -- new passwords ---------------------------------------------------------------------------------


def test_common_passwords_are_refused_case_insensitively(ctx):
    merchant = merchants.get(ctx, TEST_MERCHANT_ID)
    assert len(COMMON_PASSWORDS) >= 300
    for common in ("password123", "Password123", "QWERTY123456", "iloveyou1", "Welcome123"):
        with pytest.raises(BadRequest) as refused:
            auth.set_password(ctx, merchant, "", common, common)
        assert "most common passwords" in refused.value.description
        assert refused.value.field == "new_password"
    assert auth.MIN_PASSWORD_LENGTH >= 8
    with pytest.raises(BadRequest, match="at least 8 characters"):
        auth.set_password(ctx, merchant, "", "x7#kQ2", "x7#kQ2")
    saved = auth.set_password(ctx, merchant, "", PASSWORD, PASSWORD)
    assert auth.verify_password(PASSWORD, saved.password_hash)


def test_the_account_page_explains_a_common_password(ctx):
    client = DashboardClient(create_app(ctx))
    client.login()
    client.get("/dashboard/account")
    refused = client.post(
        "/dashboard/account", {"new_password": "Password1234", "confirm_password": "Password1234"}
    )
    assert refused.status_code == 400 and "most common passwords" in refused.text


def test_successful_sign_ins_do_not_use_up_the_clients_window(make_ctx, owner):
    """An office behind one address signs in all day: only failures fill its window."""
    ctx = make_ctx(PAYGATE_LIMIT_SIGN_IN_IP="3/900")
    for _ in range(5):
        assert attempt(ctx, owner.email, PASSWORD) == "signed in"
    outcomes = [attempt(ctx, owner.email, "guess") for _ in range(4)]
    assert outcomes == ["refused"] * 3 + ["limited"]
