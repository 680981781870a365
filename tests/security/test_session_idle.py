"""Dashboard sessions end after PAYGATE_SESSION_IDLE_MINUTES without use (issue 15: "no idle
timeout"); using a session restarts its idle clock. Real PostgreSQL, the dashboard in-process."""

from __future__ import annotations

from paygate.services import auth, merchants
from paygate.web.dashboard.app import create_app
from tests.dashboard_client import DashboardClient


def idle_for(ctx, minutes: float) -> None:
    """Every session was last used ``minutes`` ago (what waiting that long would leave)."""
    with ctx.db.connection() as conn:
        conn.execute(
            "UPDATE dashboard_sessions SET last_seen_at = now() - make_interval(mins => %s)",
            (minutes,),
        )


def test_a_session_unused_past_the_idle_limit_is_signed_out(ctx):
    client = DashboardClient(create_app(ctx))
    client.login()
    assert client.get("/dashboard").status_code == 200
    idle_for(ctx, ctx.settings.session_idle_minutes + 1)
    answer = client.get("/dashboard")
    assert answer.status_code == 303 and "/login" in answer.headers["location"]


def test_using_a_session_restarts_its_idle_clock(ctx):
    client = DashboardClient(create_app(ctx))
    client.login()
    idle_for(ctx, ctx.settings.session_idle_minutes - 1)
    assert client.get("/dashboard").status_code == 200  # used just in time: the clock restarts
    with ctx.db.connection() as conn:
        seen = conn.execute(
            "SELECT now() - last_seen_at < interval '1 minute' AS fresh FROM dashboard_sessions"
        ).fetchone()
    assert seen["fresh"]
    idle_for(ctx, ctx.settings.session_idle_minutes - 1)
    assert client.get("/dashboard").status_code == 200


def test_the_idle_limit_is_a_setting(make_ctx):
    ctx = make_ctx(PAYGATE_SESSION_IDLE_MINUTES="5")
    client = DashboardClient(create_app(ctx))
    client.login()
    idle_for(ctx, 6)
    assert client.get("/dashboard").status_code == 303


def test_idle_sessions_are_not_counted_as_live(ctx):
    client = DashboardClient(create_app(ctx))
    client.login()
    other = DashboardClient(create_app(ctx))
    other.login()
    idle_for(ctx, ctx.settings.session_idle_minutes + 1)
    assert auth.live_sessions(ctx, merchants.test_merchant(ctx)) == 0
    client.login()  # a fresh session; the two old ones are idle
    assert auth.live_sessions(ctx, merchants.test_merchant(ctx)) == 1
