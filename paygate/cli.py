"""The ``paygate`` command: run the gateway (all of it, or one process), migrate, list plugins."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from . import __version__
from .config import APPS, Settings
from .errors import PluginError

log = logging.getLogger("paygate")

# Commands that start servers or workers: their plugins are loaded (and checked) up front.
STARTS_PROCESSES = ("up", "worker", *APPS)
# Commands that start a process or touch the database: production mode checks its settings
# (``Settings.check_startup``) before any of them does anything.
CHECKS_SETTINGS = (*STARTS_PROCESSES, "migrate", "merchants")


def _setup_logging(level: str = "INFO") -> None:
    """Log to stderr at ``level`` (``Settings.log_level``, from ``PAYGATE_LOG_LEVEL``)."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
        stream=sys.stderr,
    )


def cmd_migrate(args, settings: Settings) -> int:
    from .wiring import prepare_database

    prepare_database(settings)
    print("database is up to date")
    return 0


def cmd_serve(args, settings: Settings) -> int:
    from .serve import serve
    from .wiring import prepare_database

    factory, port_field = APPS[args.command]
    if not args.no_migrate:
        prepare_database(settings)
    serve(
        factory,
        host=args.host or settings.bind_host,
        port=args.port or getattr(settings, port_field),
        workers=args.workers or settings.api_workers,
        threads=args.threads or settings.api_threads,
        name=args.command,
    )
    return 0


def cmd_worker(args, settings: Settings) -> int:
    from .jobs.worker import run_worker
    from .wiring import build_worker, prepare_database

    prepare_database(settings)
    ctx, queue = build_worker(settings)
    run_worker(ctx, queue, workers=args.concurrency)
    return 0


def cmd_plugins(args, settings: Settings) -> int:
    from .plugins import load_plugins

    plugins = load_plugins(settings)
    if args.json:
        print(json.dumps(plugins.catalog(), indent=2))
        return 0
    for row in plugins.info():
        provides = [f"processor {p}" for p in row.processors]
        provides += [f"notifier {n}" for n in row.notifiers]
        if "paygate_refund_policy" in row.hooks:
            provides.append("refund policy")
        print(f"{row.name}")
        print(f"    kind:         {row.kind}")
        print(f"    provides:     {', '.join(provides) or '-'}")
        print(f"    distribution: {row.distribution or '-'} {row.version}".rstrip())
        print(f"    hooks:        {', '.join(row.hooks) or '-'}")
    if plugins.disabled:
        print(f"disabled by PAYGATE_DISABLE_PLUGINS: {', '.join(plugins.disabled)}")
    return 0


def check_plugins(settings: Settings) -> None:
    """Load the plugins once before anything starts, so a broken one is named right away."""
    from .plugins import load_plugins

    rows = load_plugins(settings).info()
    log.info(
        "plugins: %s",
        ", ".join(f"{r.name} ({r.kind}, {r.distribution or '-'} {r.version})" for r in rows),
    )


def parse_duration(text: str) -> float:
    """``0``, ``90``, ``90s``, ``15m``, ``24h``, ``7d`` -> seconds (argparse type)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    scale = units.get(text[-1:], None)
    number = text[:-1] if scale else text
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (like 0, 90s, 15m, 24h, 7d)")
    return seconds


def _moment(value) -> str:
    from .services.views import iso  # the one wire moment format (UTC, second precision)

    return iso(value) or "-"


def _key_state(key, now) -> str:
    if key.revoked_at:
        return f"revoked {_moment(key.revoked_at)}"
    if key.expires_at and key.expires_at <= now:
        return f"expired {_moment(key.expires_at)}"
    if key.expires_at:
        return f"live until {_moment(key.expires_at)}"
    return "live"


def _key_json(key, now) -> dict:
    from .services.views import iso

    return {
        "api_key": key.api_key,
        "created_at": iso(key.created_at),
        "last_used_at": iso(key.last_used_at),
        "expires_at": iso(key.expires_at),
        "revoked_at": iso(key.revoked_at),
        "live": key.live_at(now),
    }


def _print_issued(args, merchant, issued, heading: str) -> None:
    """The one place a new secret is printed: once, right after it was made."""
    if args.json:
        print(
            json.dumps(
                {
                    "id": merchant.id,
                    "name": merchant.name,
                    "email": merchant.email,
                    "processor": merchant.processor,
                    "api_key": issued.key.api_key,
                    "api_secret": issued.api_secret,
                }
            )
        )
        return
    print(heading)
    print(f"  id:         {merchant.id}")
    print(f"  email:      {merchant.email}")
    print(f"  api key:    {issued.key.api_key}")
    print(f"  api secret: {issued.api_secret}")
    print("Store the secret now: this is the only time it is shown (only its hash is kept).")


def _read_password() -> str:
    """The new password from a prompt (twice) or the first line of stdin; never from argv."""
    import getpass

    from .errors import PASSWORD_INPUT_MISSING, PASSWORDS_DIFFER, BadRequest

    if sys.stdin.isatty():
        password = getpass.getpass("New password: ")
        if getpass.getpass("Repeat it: ") != password:
            raise BadRequest(PASSWORDS_DIFFER)
        return password
    line = sys.stdin.readline()
    if not line:
        raise BadRequest(PASSWORD_INPUT_MISSING)
    return line.rstrip("\r\n")


def _merchants_action(args, ctx) -> None:
    from datetime import UTC, datetime

    from .services import auth, merchants

    now = datetime.now(UTC)
    if args.action == "create":
        merchant, issued = merchants.create(ctx, args.name, args.email, args.processor)
        _print_issued(args, merchant, issued, f"created merchant {merchant.name}")
        return
    if args.action == "list":
        rows = [(m, merchants.keys_of(ctx, m)) for m in merchants.all_merchants(ctx)]
        if args.json:
            listing = [
                {
                    "id": m.id,
                    "email": m.email,
                    "name": m.name,
                    "processor": m.processor,
                    "active": m.is_active,
                    "keys": [_key_json(k, now) for k in keys],
                }
                for m, keys in rows
            ]
            print(json.dumps(listing, indent=2))
            return
        for m, keys in rows:
            state = "" if m.is_active else "  (inactive)"
            print(f"{m.id}  {m.email}  {m.name}  processor={m.processor}{state}")
            for k in keys:
                print(
                    f"    {k.api_key}  created {_moment(k.created_at)}  "
                    f"last used {_moment(k.last_used_at)}  {_key_state(k, now)}"
                )
        return
    merchant = merchants.find(ctx, args.merchant)
    if args.action == "set-processor":
        merchant = merchants.set_processor(ctx, merchant.id, args.processor)
        print(
            f"merchant {merchant.email} ({merchant.id}) now routes new payments to "
            f"{merchant.processor} (running API processes pick it up within "
            f"{merchants.CREDENTIAL_CACHE_SECONDS:g} s)"
        )
    elif args.action == "rotate-key":
        merchant, issued, retired = merchants.rotate_key(ctx, merchant, args.overlap, now=now)
        _print_issued(args, merchant, issued, f"new API key for {merchant.email}")
        if not args.json:
            for key in retired:
                print(f"old key {key.api_key}: {_key_state(key, now)}", file=sys.stderr)
    elif args.action == "revoke-key":
        revoked = merchants.revoke_key(ctx, merchant, args.key)
        print(
            f"revoked {revoked.api_key} of {merchant.email} (running API processes refuse it "
            f"within {merchants.CREDENTIAL_CACHE_SECONDS:g} s)"
        )
    elif args.action in ("deactivate", "activate"):
        merchant = merchants.set_active(ctx, merchant, args.action == "activate")
        if merchant.is_active:
            print(f"merchant {merchant.email} ({merchant.id}) is active again")
        else:
            print(
                f"merchant {merchant.email} ({merchant.id}) is inactive: its API keys are "
                f"refused (running API processes within "
                f"{merchants.CREDENTIAL_CACHE_SECONDS:g} s), its dashboard sessions ended"
            )
    elif args.action == "set-password":
        password = _read_password()
        auth.set_password(ctx, merchant, "", password, password, require_current=False)
        print(
            f"password set for {merchant.email}: it signs in to the dashboard with it; "
            "its other dashboard sessions were signed out"
        )
    else:
        print(f"id:        {merchant.id}")
        print(f"email:     {merchant.email}")
        print(f"name:      {merchant.name}")
        print(f"processor: {merchant.processor}")
        print(f"api key:   {merchant.api_key}")


def cmd_merchants(args, settings: Settings) -> int:
    from .errors import PaygateError
    from .wiring import build_context, prepare_database

    prepare_database(settings)
    ctx = build_context(settings, role="cli")
    try:
        _merchants_action(args, ctx)
    except PaygateError as exc:
        print(f"paygate: {exc.description}", file=sys.stderr)
        return 1
    finally:
        ctx.db.close()
    return 0


def cmd_up(args, settings: Settings) -> int:
    from .supervisor import run_up

    return run_up(
        settings, state_dir=args.state_dir, with_worker=not args.no_worker, host=args.host
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paygate",
        description="Paygate: run the gateway (all of it, or one process), migrate, list plugins, "
        "route merchants.",
        epilog="`paygate up` with no DATABASE_URL/REDIS_URL runs embedded PostgreSQL and Valkey.",
    )
    parser.add_argument("--version", action="version", version=f"paygate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run everything: API, dashboard, checkout, worker")
    up.add_argument("--state-dir", help="where embedded servers keep data (default .paygate)")
    up.add_argument("--no-worker", action="store_true", help="do not start a worker")
    up.add_argument(
        "--host",
        help="address the API, dashboard and checkout listen on (default PAYGATE_BIND, else "
        "127.0.0.1; 0.0.0.0 makes the development gateway reachable from other machines)",
    )
    up.set_defaults(func=cmd_up)

    for name in APPS:
        serve = sub.add_parser(name, help=f"run the {name} server (gunicorn)")
        serve.add_argument("--host", help="listen address (default PAYGATE_BIND, else 127.0.0.1)")
        serve.add_argument("--port", type=int)
        serve.add_argument("--workers", type=int, help="gunicorn worker processes")
        serve.add_argument("--threads", type=int, help="threads per worker")
        serve.add_argument("--no-migrate", action="store_true")
        serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a job worker (Huey consumer + janitor)")
    worker.add_argument("--concurrency", type=int, help="worker threads")
    worker.set_defaults(func=cmd_worker)

    sub.add_parser(
        "migrate", help="apply migrations (and in development seed the test merchant)"
    ).set_defaults(func=cmd_migrate)

    plugins = sub.add_parser("plugins", help="list loaded plugins")
    plugins.add_argument("--json", action="store_true")
    plugins.set_defaults(func=cmd_plugins)

    merchants = sub.add_parser(
        "merchants",
        help="create merchants, list them, rotate API keys, set passwords, route payments",
        description="Merchant management. A new API secret is printed once (only a keyed hash "
        "of it is stored). Exit status: 0 done, 1 refused (the reason on stderr), 2 usage.",
    )
    actions = merchants.add_subparsers(dest="action", required=True)
    create = actions.add_parser(
        "create",
        help="create an active merchant with a new API key (the secret is printed once)",
        description="Create an active merchant with a new API key and secret. The secret is "
        "printed once: store it now.",
    )
    create.add_argument("--name", required=True, help="the merchant's name")
    create.add_argument("--email", required=True, help="its email (its dashboard sign-in)")
    create.add_argument("--processor", help="route its payments to this processor (default test)")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    listing = actions.add_parser(
        "list",
        help="list merchants and their keys (never a secret)",
        description="Every merchant with its API keys: created, last used (recorded at most "
        "once a minute), expiry or revocation. Secrets are never shown: none is stored.",
    )
    listing.add_argument("--json", action="store_true")
    show = actions.add_parser("show", help="show a merchant's id, email and processor")
    show.add_argument("merchant", help="merchant id or email")
    rotate = actions.add_parser(
        "rotate-key",
        help="issue a new API key; the old ones keep working for the overlap",
        description="Issue a new API key and secret (printed once). Every other live key of "
        "the merchant keeps working for --overlap, then stops; --overlap 0 revokes them now "
        "(running API processes notice within a few seconds).",
    )
    rotate.add_argument("merchant", help="merchant id or email")
    rotate.add_argument(
        "--overlap",
        type=parse_duration,
        default=24 * 3600.0,
        help="how long the old keys stay valid: seconds or 90s, 15m, 24h, 7d (default 24h)",
    )
    rotate.add_argument("--json", action="store_true", help="print one JSON object")
    revoke = actions.add_parser(
        "revoke-key",
        help="revoke one API key now, keeping the merchant's others",
        description="Revoke one API key of the merchant at once (a leaked old key), leaving its "
        "other keys working. The current key cannot be revoked: rotate-key first.",
    )
    revoke.add_argument("merchant", help="merchant id or email")
    revoke.add_argument("key", help="the API key to revoke (key_...; see list)")
    for action, what in (
        ("deactivate", "refuse its API keys and dashboard sign-in, and end its sessions"),
        ("activate", "let an inactive merchant work again"),
    ):
        toggle = actions.add_parser(action, help=what, description=f"{what[0].upper()}{what[1:]}.")
        toggle.add_argument("merchant", help="merchant id or email")
    password = actions.add_parser(
        "set-password",
        help="set the merchant's dashboard password (prompt or stdin, never an argument)",
        description="Set the merchant's dashboard password: typed at a prompt (twice), or the "
        "first line of stdin. The dashboard's rules apply; its sessions are signed out.",
    )
    password.add_argument("merchant", help="merchant id or email")
    route = actions.add_parser(
        "set-processor", help="send the merchant's new payments to a registered processor"
    )
    route.add_argument("merchant", help="merchant id or email")
    route.add_argument("processor", help="a processor name (see `paygate plugins`)")
    merchants.set_defaults(func=cmd_merchants)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command in CHECKS_SETTINGS:
            settings.check_startup()
    except ValueError as exc:
        print(f"paygate: {exc}", file=sys.stderr)
        return 2
    _setup_logging(settings.log_level)
    try:
        if args.command in STARTS_PROCESSES:
            check_plugins(settings)
        return args.func(args, settings)
    except PluginError as exc:
        print(f"paygate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
