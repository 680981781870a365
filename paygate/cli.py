"""The ``paygate`` command: run the gateway (all of it, or one process), migrate, list plugins."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from . import __version__
from .config import Settings
from .errors import PluginError

log = logging.getLogger("paygate")

APPS = {
    "api": ("paygate.api.app:get_app", "port"),
    "dashboard": ("paygate.web.dashboard.app:get_app", "dashboard_port"),
    "checkout": ("paygate.web.checkout.app:get_app", "checkout_port"),
}
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


def cmd_merchants(args, settings: Settings) -> int:
    from .errors import PaygateError
    from .services import merchants
    from .wiring import build_context, prepare_database

    prepare_database(settings)
    ctx = build_context(settings, role="cli")
    try:
        merchant = merchants.find(ctx, args.merchant)
        if args.action == "set-processor":
            merchant = merchants.set_processor(ctx, merchant.id, args.processor)
            print(
                f"merchant {merchant.email} ({merchant.id}) now routes new payments to "
                f"{merchant.processor} (running API processes pick it up within "
                f"{merchants.CREDENTIAL_CACHE_SECONDS:g} s)"
            )
        else:
            print(f"id:        {merchant.id}")
            print(f"email:     {merchant.email}")
            print(f"processor: {merchant.processor}")
    except PaygateError as exc:
        print(f"paygate: {exc.description}", file=sys.stderr)
        return 1
    finally:
        ctx.db.close()
    return 0


def cmd_up(args, settings: Settings) -> int:
    from .supervisor import run_up

    return run_up(settings, state_dir=args.state_dir, with_worker=not args.no_worker)


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
    up.set_defaults(func=cmd_up)

    for name in APPS:
        serve = sub.add_parser(name, help=f"run the {name} server (gunicorn)")
        serve.add_argument("--host")
        serve.add_argument("--port", type=int)
        serve.add_argument("--workers", type=int, help="gunicorn worker processes")
        serve.add_argument("--threads", type=int, help="threads per worker")
        serve.add_argument("--no-migrate", action="store_true")
        serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a job worker (Huey consumer + janitor)")
    worker.add_argument("--concurrency", type=int, help="worker threads")
    worker.set_defaults(func=cmd_worker)

    sub.add_parser("migrate", help="apply migrations and seed the test merchant").set_defaults(
        func=cmd_migrate
    )

    plugins = sub.add_parser("plugins", help="list loaded plugins")
    plugins.add_argument("--json", action="store_true")
    plugins.set_defaults(func=cmd_plugins)

    merchants = sub.add_parser("merchants", help="show a merchant or route its payments")
    actions = merchants.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="show a merchant's id, email and processor")
    show.add_argument("merchant", help="merchant id or email")
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
