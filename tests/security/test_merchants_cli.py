"""``paygate merchants create|list|rotate-key|set-password`` as an operator runs them: a
subprocess against the test database. A secret is printed once and never stored or listed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from paygate.services import auth, merchants
from tests.fixtures import TEST_SECRET


def paygate(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PAYGATE_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "paygate", "merchants", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin if stdin is not None else "",
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1 and result.stdout == "", result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paygate: "), result.stderr
    return lines[0]


def printed(out: str) -> dict[str, str]:
    """The indented ``name: value`` lines of a command's output."""
    pairs = (line.split(":", 1) for line in out.splitlines() if line.startswith("  "))
    return {name.strip(): value.strip() for name, value in pairs}


def stored_text(ctx) -> str:
    with ctx.db.connection() as conn:
        rows = conn.execute(
            "SELECT row_to_json(m)::text AS r FROM merchants m "
            "UNION ALL SELECT row_to_json(k)::text FROM api_keys k"
        ).fetchall()
    return "\n".join(row["r"] for row in rows)


def status(api, key: str, secret: str) -> int:
    headers = {"X-Api-Key": key, "X-Api-Secret": secret}
    return api.simulate_get("/api/v1/orders/order_missing000000", headers=headers).status_code


@pytest.fixture
def created(clean):
    return json.loads(
        ok(paygate("create", "--name", "Shop", "--email", "shop@example.com", "--json"))
    )


def test_create_prints_a_working_key_and_secret_once_and_stores_only_a_hash(clean, ctx, api):
    out = ok(paygate("create", "--name", "Chai Co", "--email", "chai@example.com"))
    fields = printed(out)
    key, secret = fields["api key"], fields["api secret"]
    assert key.startswith("key_live_") and secret.startswith("secret_live_")
    assert out.count(secret) == 1 and "only time it is shown" in out
    assert status(api, key, secret) == 404  # authenticated; the order does not exist
    assert secret not in stored_text(ctx)
    merchant = merchants.find(ctx, "chai@example.com")
    assert merchant.name == "Chai Co" and merchant.is_active and merchant.processor == "test"


def test_create_json_and_its_refusals(created, ctx, api):
    assert set(created) == {"id", "name", "email", "processor", "api_key", "api_secret"}
    assert status(api, created["api_key"], created["api_secret"]) == 404
    taken = one_line_error(paygate("create", "--name", "X", "--email", "SHOP@example.com"))
    assert "already exists" in taken
    assert "email" in one_line_error(paygate("create", "--name", "X", "--email", "nope"))
    unknown = paygate("create", "--name", "X", "--email", "x@example.com", "--processor", "zz")
    assert "Unknown processor" in one_line_error(unknown)


def test_list_shows_merchants_and_keys_but_never_a_secret(created, ctx):
    rotated = json.loads(ok(paygate("rotate-key", "shop@example.com", "--json")))
    text = ok(paygate("list"))
    as_json = ok(paygate("list", "--json"))
    for output in (text, as_json):
        for secret in (created["api_secret"], rotated["api_secret"], TEST_SECRET):
            assert secret not in output
        assert "secret_" not in output
        assert created["api_key"] in output and rotated["api_key"] in output
        assert "shop@example.com" in output and "test@example.com" in output
    (shop,) = [m for m in json.loads(as_json) if m["email"] == "shop@example.com"]
    assert shop["name"] == "Shop" and shop["processor"] == "test"
    assert {k["api_key"] for k in shop["keys"]} == {created["api_key"], rotated["api_key"]}
    assert all({"created_at", "last_used_at", "expires_at"} <= set(k) for k in shop["keys"])


def test_rotate_key_prints_the_new_secret_once_and_keeps_the_old_key_for_the_overlap(
    created, ctx, api
):
    out = ok(paygate("rotate-key", "shop@example.com", "--overlap", "2h"))
    fields = printed(out)
    new_key, new_secret = fields["api key"], fields["api secret"]
    assert out.count(new_secret) == 1 and created["api_secret"] not in out
    assert status(api, new_key, new_secret) == 404
    assert status(api, created["api_key"], created["api_secret"]) == 404  # the overlap
    (old,) = [k for k in merchants.keys_of(ctx, merchants.find(ctx, created["id"])) if k.expires_at]
    assert old.api_key == created["api_key"] and old.revoked_at is None
    assert new_secret not in stored_text(ctx)


def test_rotate_key_with_overlap_zero_revokes_the_old_key_at_once(created, ctx, api):
    assert status(api, created["api_key"], created["api_secret"]) == 404
    rotated = json.loads(ok(paygate("rotate-key", created["id"], "--overlap", "0", "--json")))
    merchants.forget_cached()  # this test process is another API process: its cache (5 s) goes
    assert status(api, created["api_key"], created["api_secret"]) == 401
    assert status(api, rotated["api_key"], rotated["api_secret"]) == 404


def test_rotate_key_refusals(created):
    assert "overlap" in one_line_error(paygate("rotate-key", created["id"], "--overlap", "400d"))
    assert "not found" in one_line_error(paygate("rotate-key", "nobody@example.com"))
    bad = paygate("rotate-key", created["id"], "--overlap", "soon")
    assert bad.returncode == 2 and "not a duration" in bad.stderr


def test_set_password_reads_stdin_and_applies_the_dashboard_rules(created, ctx):
    ok(paygate("set-password", "shop@example.com", stdin="a fine long password\n"))
    merchant = auth.sign_in(ctx, "shop@example.com", "a fine long password")
    assert merchant.id == created["id"]
    assert "at least" in one_line_error(paygate("set-password", created["id"], stdin="short\n"))
    assert "No password" in one_line_error(paygate("set-password", created["id"], stdin=""))
    # An operator replaces a password without the current one; the old one stops working.
    ok(paygate("set-password", created["id"], stdin="another long password\n"))
    assert auth.sign_in(ctx, "shop@example.com", "another long password").id == created["id"]
    # Never from argv: there is no way to pass it as an argument.
    extra = paygate("set-password", created["id"], "a fine long password")
    assert extra.returncode == 2


@pytest.mark.parametrize(
    "action",
    [
        "create",
        "list",
        "rotate-key",
        "revoke-key",
        "deactivate",
        "activate",
        "set-password",
        "show",
    ],
)
def test_every_merchants_command_has_help(action):
    result = subprocess.run(
        [sys.executable, "-m", "paygate", "merchants", action, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "usage: paygate merchants" in result.stdout


def test_revoke_key_revokes_one_old_key_and_keeps_the_rest(created, ctx, api):
    """A leaked key from an earlier rotation goes at once; the keys in use keep working."""
    first = json.loads(ok(paygate("rotate-key", created["id"], "--overlap", "2h", "--json")))
    second = json.loads(ok(paygate("rotate-key", created["id"], "--overlap", "2h", "--json")))
    out = ok(paygate("revoke-key", "shop@example.com", created["api_key"]))
    assert f"revoked {created['api_key']}" in out
    merchants.forget_cached()  # this test process is another API process: its cache (5 s) goes
    assert status(api, created["api_key"], created["api_secret"]) == 401
    assert status(api, first["api_key"], first["api_secret"]) == 404  # still in its overlap
    assert status(api, second["api_key"], second["api_secret"]) == 404


def test_revoke_key_refuses_the_current_key_and_a_key_that_is_not_live(created, api):
    assert "current API key" in one_line_error(
        paygate("revoke-key", created["id"], created["api_key"])
    )
    assert "not a live API key" in one_line_error(paygate("revoke-key", created["id"], "key_x"))
    assert status(api, created["api_key"], created["api_secret"]) == 404  # untouched


def test_deactivate_refuses_keys_and_sign_in_and_activate_brings_them_back(created, ctx, api):
    ok(paygate("set-password", created["id"], stdin="a fine long password\n"))
    assert "is inactive" in ok(paygate("deactivate", "shop@example.com"))
    merchants.forget_cached()
    assert status(api, created["api_key"], created["api_secret"]) == 401
    with pytest.raises(auth.AuthenticationFailed):
        auth.sign_in(ctx, "shop@example.com", "a fine long password")
    assert "(inactive)" in ok(paygate("list"))
    assert "active again" in ok(paygate("activate", created["id"]))
    merchants.forget_cached()
    assert status(api, created["api_key"], created["api_secret"]) == 404
    assert auth.sign_in(ctx, "shop@example.com", "a fine long password").id == created["id"]
