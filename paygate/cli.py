"""The ``paygate`` command: run the gateway (all of it, or one process), migrate, list plugins."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from . import __version__, devcli, devlisten, devtrigger, runfile
from .config import APPS, Settings
from .errors import PluginError

log = logging.getLogger("paygate")

# Commands that start servers or workers: their plugins are loaded (and checked) up front.
STARTS_PROCESSES = ("up", "worker", *APPS)
# Commands that start a process or touch the database: production mode checks its settings
# (``Settings.check_startup``) before any of them does anything.
CHECKS_SETTINGS = (*STARTS_PROCESSES, "migrate", "merchants", "processors", "observers")


def _setup_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Log to stderr at ``level`` (``PAYGATE_LOG_LEVEL``) in ``log_format``
    (``PAYGATE_LOG_FORMAT``: ``text``, or ``json`` with the request's and job's ids)."""
    from .logcontext import configure

    configure(level, log_format)


def cmd_migrate(args, settings: Settings) -> int:
    from .wiring import prepare_database

    applied = prepare_database(settings)
    if applied:
        plural = "" if len(applied) == 1 else "s"
        print(f"applied {len(applied)} migration{plural}; database is up to date")
    else:
        print("database is up to date (no migration to apply)")
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
        stop_timeout=settings.stop_timeout_seconds,
        log_format=settings.log_format,
        multiprocess_metrics=args.command == "api",  # the app that serves /metrics
    )
    return 0


def cmd_worker(args, settings: Settings) -> int:
    from . import metrics
    from .jobs.worker import lower_priority, run_worker
    from .supervisor import Helpers, process_count
    from .wiring import build_worker, prepare_database

    helpers = None
    if not args.helper:  # a helper's parent has done this (its priority is inherited)
        lower_priority(settings.worker_nice)  # first: every thread started later inherits it
        prepare_database(settings)
        count = args.processes or process_count(settings)
        if count > 1:  # one /metrics for all of them: each process counts into one directory
            metrics.use_multiprocess_directory("worker")
            helpers = Helpers(settings, count - 1, args.concurrency)
    try:
        ctx, queue = build_worker(settings)
        return run_worker(ctx, queue, workers=args.concurrency, helpers=helpers, helper=args.helper)
    finally:
        if helpers is not None:
            metrics.remove_directory()


def _processes(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def cmd_worker_alive(args, settings: Settings) -> int:
    """A worker's liveness probe: exit 1 only when Redis answers and no worker on this host
    (``<hostname>:<pid>``, as the heartbeat names it) beat within PAYGATE_HEARTBEAT_TTL. Redis
    being away is not the worker's fault: exit 0, so an outage restarts nothing. With
    ``--ready`` (the readiness probe) only a beat seen counts: Redis away exits 1 too."""
    import socket

    from redis.exceptions import RedisError

    from .jobs import heartbeat
    from .jobs.queue import DEFAULT_REDIS_URL, Queue
    from .supervisor import redact_url

    queue = Queue(settings)
    host = socket.gethostname()
    # Which Redis was asked: a probe pointed at the wrong one (another db number, no REDIS_URL
    # in the pod) says so instead of only "no worker".
    asked = redact_url(settings.redis_url or DEFAULT_REDIS_URL)
    try:
        beating = heartbeat.running_on(
            queue.huey.storage.conn, queue.heartbeat_key, settings.heartbeat_ttl_seconds, host
        )
    except RedisError as exc:
        if args.ready:
            print(
                f"paygate: redis {asked} unreachable ({exc.__class__.__name__}): no beat seen, "
                "not ready",
                file=sys.stderr,
            )
            return 1
        print(f"redis {asked} unreachable ({exc.__class__.__name__}): not the worker's fault")
        return 0
    if beating:
        print(f"a worker on {host} is beating")
        return 0
    print(
        f"paygate: no worker on {host} beat within {settings.heartbeat_ttl_seconds:g} s "
        f"(queue {settings.queue_name}, redis {asked})",
        file=sys.stderr,
    )
    return 1


def cmd_plugins(args, settings: Settings) -> int:
    """List what is loaded; a plugin that fails is reported (exit 1), never fatal here."""
    from .plugins import declared_settings, load_plugins

    plugins = load_plugins(settings, tolerant=True)
    not_ready = _not_ready_merchants(settings, plugins)
    if args.json:
        catalog = plugins.catalog()
        if not_ready is not None:
            catalog["merchants_not_ready"] = [
                {
                    "merchant_id": merchant.id,
                    "email": merchant.email,
                    "processor": described.processor,
                    "missing": list(described.missing),
                    "error": described.error,
                }
                for merchant, described in not_ready
            ]
        print(json.dumps(catalog, indent=2))
        return _report_failures(plugins)
    for row in plugins.info():
        provides = [f"processor {p}" for p in row.processors]
        provides += [f"notifier {n}" for n in row.notifiers]
        provides += [f"observer {o}" for o in row.observers]
        if "paygate_refund_policy" in row.hooks:
            provides.append(f"refund policy ({_policy_scope_text(row)})")
        if "paygate_route_payment" in row.hooks:
            provides.append("router")
        print(f"{row.name}")
        print(f"    kind:         {row.kind}")
        print(f"    provides:     {', '.join(provides) or '-'}")
        print(f"    distribution: {row.distribution or '-'} {row.version}".rstrip())
        print(f"    hooks:        {', '.join(row.hooks) or '-'}")
        print(f"    plugin API:   {row.requires_api or 'none declared (written for 1.0)'}")
        for name in row.processors:
            for setting in declared_settings(plugins.processors[name]):
                flags = ", ".join(
                    f
                    for f, on in (("required", setting.required), ("secret", setting.secret))
                    if on
                )
                print(
                    f"    setting:      {name}.{setting.name} ({flags or 'optional'})"
                    f"{' - ' + setting.description if setting.description else ''}"
                )
    if plugins.disabled:
        print(f"disabled by PAYGATE_DISABLE_PLUGINS: {', '.join(plugins.disabled)}")
    for merchant, described in not_ready or ():
        problem = described.error or f"missing required settings: {', '.join(described.missing)}"
        print(
            f"merchant {merchant.email} ({merchant.id}) on processor {described.processor}: "
            f"{problem} (paygate processors configure)"
        )
    for failure in plugins.failures:
        print(f"FAILED {failure.name}: {failure.error}")
    return _report_failures(plugins)


def _policy_scope_text(row) -> str:
    """A refund policy's scope in force, as ``paygate plugins`` shows it."""
    if row.policy_merchants is None and row.policy_processors is None:
        return "every payment"
    parts = []
    if row.policy_merchants is not None:
        parts.append(f"merchants {', '.join(row.policy_merchants) or '(none)'}")
    if row.policy_processors is not None:
        parts.append(f"processors {', '.join(row.policy_processors) or '(none)'}")
    return "payments of " + "; ".join(parts)


def _report_failures(plugins) -> int:
    """Each failed plugin on one ``paygate:`` line of stderr; 1 if any."""
    for failure in plugins.failures:
        print(f"paygate: {failure.error}", file=sys.stderr)
    if plugins.failures:
        print(
            f"{len(plugins.failures)} plugin(s) failed to load: `paygate up`, api, worker, "
            "dashboard and checkout refuse to start until each is fixed, uninstalled or listed "
            "in PAYGATE_DISABLE_PLUGINS",
            file=sys.stderr,
        )
        return 1
    return 0


def _not_ready_merchants(settings: Settings, plugins):
    """Active merchants whose processor lacks required settings, when a database is configured
    and reachable (None otherwise: the listing works without one)."""
    from .plugins import declared_settings

    if not settings.database_url or not any(
        declared_settings(p) for p in plugins.processors.values()
    ):
        return None
    from .services import merchants, processor_configs
    from .wiring import build_context

    try:
        ctx = build_context(settings, role="cli", plugins=plugins)
    except Exception as exc:  # the listing itself must not depend on the database
        log.warning("merchants' processor settings not checked: %s", exc)
        return None
    try:
        active = [m for m in merchants.all_merchants(ctx) if m.is_active]
        return processor_configs.not_ready(ctx, active)
    except Exception as exc:
        log.warning("merchants' processor settings not checked: %s", exc)
        return None
    finally:
        ctx.db.close()


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
        _warn_not_ready(ctx, merchant)
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
        _route(args, ctx, merchant)
        fallback = None if args.fallback is None else merchants.parse_fallback(args.fallback)
        merchant = merchants.set_processor(ctx, merchant.id, args.processor, fallback)
        then = (
            f", then {', '.join(merchant.fallback_processors)} when unavailable"
            if merchant.fallback_processors
            else ""
        )
        print(
            f"merchant {merchant.email} ({merchant.id}) now routes new payments to "
            f"{merchant.processor}{then} (running API processes pick it up within "
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
        if merchant.fallback_processors:
            print(f"fallback:  {', '.join(merchant.fallback_processors)}")
        print(f"api key:   {merchant.api_key}")


def _assignments(pairs, from_env) -> dict[str, str]:
    """``--set NAME=VALUE`` and ``--set-from-env NAME=ENVVAR`` as one ``{name: value}``."""
    from .config import environment_value
    from .errors import PROCESSOR_SETTING_ENV_MISSING, BadRequest

    values = dict(pairs or ())
    for name, variable in from_env or ():
        value = environment_value(variable)
        if value is None:
            raise BadRequest(
                PROCESSOR_SETTING_ENV_MISSING.format(variable=variable, name=name), field=name
            )
        values[name] = value
    return values


def _route(args, ctx, merchant) -> None:
    """Before ``set-processor``: set the values given, then refuse a processor that still lacks
    required settings for the merchant (or whose settings do not decrypt)."""
    from .errors import PROCESSOR_SETTING_REQUIRED, BadRequest
    from .services import processor_configs

    ctx.plugins.processor(args.processor)  # unknown (or failed to load): refused first
    values = _assignments(args.set, args.set_from_env)
    if values:
        processor_configs.set_values(ctx, merchant.id, args.processor, values, actor="cli")
    described = processor_configs.describe(ctx, merchant.id, args.processor)
    if described.error:
        raise BadRequest(described.error)
    if described.missing:
        raise BadRequest(
            PROCESSOR_SETTING_REQUIRED.format(
                processor=args.processor,
                merchant=merchant.email,
                names=", ".join(described.missing),
            )
            + " (give them with --set NAME=VALUE or --set-from-env NAME=ENVVAR)"
        )


def _warn_not_ready(ctx, merchant) -> None:
    from .services import processor_configs

    described = processor_configs.describe(ctx, merchant.id, merchant.processor)
    if described.missing:
        print(
            f"warning: processor {merchant.processor} needs settings before payments can be "
            f"created: paygate processors configure {merchant.email} {merchant.processor} "
            + " ".join(f"{name}=..." for name in described.missing),
            file=sys.stderr,
        )


def _lookup_context(settings: Settings):
    """A context for commands that only look plugins up: a broken plugin is left out (its
    processors are unknown), never fatal, so ``merchants list`` works whatever is installed."""
    from .plugins import load_plugins
    from .wiring import build_context

    plugins = load_plugins(settings, tolerant=True)
    for failure in plugins.failures:
        log.debug("plugin %s left out: %s", failure.name, failure.error)
    return build_context(settings, role="cli", plugins=plugins)


def cmd_merchants(args, settings: Settings) -> int:
    from .errors import PaygateError
    from .wiring import prepare_database

    prepare_database(settings)
    ctx = _lookup_context(settings)
    try:
        _merchants_action(args, ctx)
    except PaygateError as exc:
        print(f"paygate: {exc.description}", file=sys.stderr)
        return 1
    finally:
        ctx.db.close()
    return 0


def _print_described(described, *, current: bool = False) -> None:
    marker = "  (the merchant's processor)" if current else ""
    print(f"{described.processor}{marker}")
    if described.error:
        print(f"    error:   {described.error}")
    for state in described.settings:
        if state.secret:
            shown = "set (secret)" if state.is_set else "not set (secret)"
        else:
            shown = state.value if state.is_set else "not set"
        need = "required" if state.required else "optional"
        print(f"    {state.name} = {shown}  [{need}]")
    if not described.settings:
        print("    (declares no settings)")
    for name in described.undeclared:
        print(f"    {name}: stored, but no longer declared by the processor")
    if described.missing:
        print(f"    missing: {', '.join(described.missing)}")
    if described.updated_at:
        print(
            f"    updated {_moment(described.updated_at)} by {described.updated_by} "
            f"(sealed under key {described.key_id})"
        )


def _processors_action(args, ctx) -> int:
    from .services import merchants, processor_configs

    if args.action == "reseal":
        report = processor_configs.reseal(ctx)
        first = processor_configs.keyring(ctx)[0][0]
        print(
            f"resealed {report.resealed} processor configuration(s) under key {first}; "
            f"{report.current} already were; {len(report.unreadable)} unreadable"
        )
        for merchant_id, processor, key_id in report.unreadable:
            print(
                f"unreadable: merchant {merchant_id} processor {processor} (sealed under key "
                f"{key_id}, not in PAYGATE_ENCRYPTION_KEYS): add that key back and reseal, or "
                f"clear and configure again",
                file=sys.stderr,
            )
        return 1 if report.unreadable else 0
    merchant = merchants.find(ctx, args.merchant)
    if args.action == "configure":
        values = _assignments(args.values, args.set_from_env)
        described = processor_configs.set_values(
            ctx, merchant.id, args.processor, values, actor="cli", unset=args.unset or ()
        )
        print(
            f"settings of {args.processor} for {merchant.email} saved (running processes use "
            f"them within {processor_configs.CACHE_SECONDS:g} s)"
        )
        _print_described(described, current=args.processor == merchant.processor)
    elif args.action == "clear":
        removed = processor_configs.clear(ctx, merchant.id, args.processor, actor="cli")
        print(
            f"settings of {args.processor} for {merchant.email} "
            + ("removed" if removed else "were not set")
        )
    else:
        names = [args.processor] if args.processor else [merchant.processor]
        if not args.processor:
            names += [
                d.processor
                for d in processor_configs.described_for(ctx, merchant.id)
                if d.processor != merchant.processor
            ]
        described = [processor_configs.describe(ctx, merchant.id, name) for name in names]
        if args.json:
            print(json.dumps([d.as_dict() for d in described], indent=2))
        else:
            print(f"merchant {merchant.email} ({merchant.id}) routes to {merchant.processor}")
            for d in described:
                _print_described(d, current=d.processor == merchant.processor)
    return 0


def cmd_processors(args, settings: Settings) -> int:
    from .errors import PaygateError
    from .wiring import prepare_database

    prepare_database(settings)
    ctx = _lookup_context(settings)
    try:
        return _processors_action(args, ctx)
    except PaygateError as exc:
        print(f"paygate: {exc.description}", file=sys.stderr)
        return 1
    finally:
        ctx.db.close()


def assignment(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` -> (name, value) (argparse type; the value may be empty or hold ``=``)."""
    from .errors import PROCESSOR_SETTING_ASSIGNMENT

    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(PROCESSOR_SETTING_ASSIGNMENT.format(text=text))
    return name.strip(), value


def _observer_json(status, now) -> dict:
    state = status.state
    row: dict = {"name": status.name, "installed": status.installed, "started": state is not None}
    if state is None:
        return row
    pending = state.oldest_pending_at
    return {
        **row,
        "position": state.position,
        "delivered": state.delivered,
        "lag_events": state.lag_events,
        "lag_seconds": round((now - pending).total_seconds(), 3) if pending else 0.0,
        "attempts": state.attempts,
        "last_error": state.last_error,
        "last_error_at": _moment(state.last_error_at) if state.last_error_at else None,
        "failing_event_id": state.failing_event_id,
        "next_attempt_in_seconds": (
            round(max((state.next_attempt_at - now).total_seconds(), 0.0), 3)
            if state.attempts
            else 0.0
        ),
        "leased_by": state.leased_by if state.leased_until and state.leased_until > now else None,
    }


def cmd_observers(args, settings: Settings) -> int:
    """Each event observer's position in the event log, how far behind it is, its last error."""
    from datetime import UTC, datetime

    from .services import observers
    from .wiring import prepare_database

    prepare_database(settings)
    ctx = _lookup_context(settings)
    try:
        found = observers.status(ctx)
    finally:
        ctx.db.close()
    now = datetime.now(UTC)
    rows = [_observer_json(status, now) for status in found]
    failed = _observer_failures(ctx.plugins)
    if args.json:
        print(
            json.dumps(
                {"observers": rows, "failed": [failure.as_dict() for failure in failed]},
                indent=2,
            )
        )
        return _report_observer_failures(failed)
    if not rows and not failed:
        print("no observers (a plugin registers them with paygate_register_observers)")
    missing = (
        " (not installed: no loaded plugin registers it)"
        if not failed
        else " (not registered: see the failed plugin(s) below)"
    )
    for row in rows:
        print(f"{row['name']}{'' if row['installed'] else missing}")
        if not row["started"]:
            print("    not started yet: a worker starts it at the head of the event log")
            continue
        print(
            f"    position:     {row['position']} ({row['delivered']} delivered), behind by "
            f"{row['lag_events']} events ({row['lag_seconds']:.1f} s)"
        )
        print(f"    consumer:     {row['leased_by'] or '-'}")
        if row["attempts"]:
            print(
                f"    failing:      event {row['failing_event_id']}, {row['attempts']} attempts, "
                f"next in {row['next_attempt_in_seconds']:.1f} s: {row['last_error']}"
            )
    for failure in failed:
        print(f"FAILED {failure.name}: {failure.error}")
    return _report_observer_failures(failed)


def _observer_failures(plugins) -> list:
    """The failed plugins that register observers, or may (one that failed to import shows
    no hooks): their observers run nowhere until each is fixed."""
    return [
        failure
        for failure in plugins.failures
        if "paygate_register_observers" in failure.hooks or not failure.hooks
    ]


def _report_observer_failures(failed) -> int:
    """Each failed observer plugin on one ``paygate:`` line of stderr; 1 if any."""
    for failure in failed:
        print(f"paygate: {failure.error}", file=sys.stderr)
    if failed:
        print(
            f"{len(failed)} plugin(s) that may register observers failed: their observers "
            "receive no events until each is fixed (`paygate plugins` lists every failure)",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_up(args, settings: Settings) -> int:
    from .supervisor import run_up

    return run_up(
        settings, state_dir=args.state_dir, with_worker=not args.no_worker, host=args.host
    )


def _setting_arguments(parser: argparse.ArgumentParser, values: str) -> None:
    if values == "values":
        parser.add_argument(
            "values", nargs="*", type=assignment, metavar="NAME=VALUE", help="values to set"
        )
    else:
        parser.add_argument(
            "--set",
            action="append",
            type=assignment,
            metavar="NAME=VALUE",
            help="set a setting of the processor for this merchant first (repeatable)",
        )
    parser.add_argument(
        "--set-from-env",
        action="append",
        type=assignment,
        metavar="NAME=ENVVAR",
        help="set NAME from environment variable ENVVAR (keeps secrets out of shell history)",
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
        port_variable = APPS[name][1].upper()
        serve.add_argument("--port", type=int, help=f"listen port (default {port_variable})")
        serve.add_argument(
            "--workers", type=int, help="gunicorn worker processes (default PAYGATE_API_WORKERS)"
        )
        serve.add_argument(
            "--threads", type=int, help="threads per worker (default PAYGATE_API_THREADS)"
        )
        serve.add_argument(
            "--no-migrate",
            action="store_true",
            help="start without migrating the database (another process did)",
        )
        serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a job worker (Huey consumer + janitor)")
    worker.add_argument(
        "--concurrency",
        type=int,
        help="payment and refund task threads per worker process (default "
        "PAYGATE_WORKER_CONCURRENCY; webhook threads: PAYGATE_WEBHOOK_CONCURRENCY)",
    )
    worker.add_argument(
        "--processes",
        type=_processes,
        help="worker processes: this one and helpers it starts and restarts (default "
        "PAYGATE_WORKER_PROCESSES: auto, one per usable CPU, at most 4)",
    )
    worker.add_argument("--helper", action="store_true", help=argparse.SUPPRESS)
    worker.set_defaults(func=cmd_worker)
    alive = sub.add_parser(
        "worker-alive",
        help="liveness probe: exit 1 when Redis answers but no worker on this host beats",
        description="The worker pod's probe. Exit 1 when Redis answers and no worker on this "
        "host beat within PAYGATE_HEARTBEAT_TTL, else 0 (Redis away is not the worker's fault). "
        "With --ready, exit 0 only when such a beat is seen (Redis away: 1).",
    )
    alive.add_argument(
        "--ready",
        action="store_true",
        help="readiness: require a beat seen in Redis (Redis away exits 1)",
    )
    alive.set_defaults(func=cmd_worker_alive)

    sub.add_parser(
        "migrate", help="apply migrations (and in development seed the test merchant)"
    ).set_defaults(func=cmd_migrate)

    plugins = sub.add_parser("plugins", help="list loaded plugins")
    plugins.add_argument("--json", action="store_true")
    plugins.set_defaults(func=cmd_plugins)

    observers = sub.add_parser(
        "observers",
        help="show each event observer's position, lag and last error",
        description="Each event observer's position in the event log, lag and last error, and "
        "every plugin that registers observers but failed to load or register. Exit status: 0, "
        "or 1 when such a plugin failed (each on one stderr line).",
    )
    observers.add_argument("--json", action="store_true")
    observers.set_defaults(func=cmd_observers)

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
    route.add_argument(
        "--fallback",
        metavar="B,C",
        help="processors tried in this order when one before is unavailable before any money "
        "moved (comma-separated; '' clears the list; without it the list stays)",
    )
    _setting_arguments(route, "--set")
    merchants.set_defaults(func=cmd_merchants)

    processors = sub.add_parser(
        "processors",
        help="per-merchant processor settings: configure, show, clear, reseal",
        description="Per-merchant processor settings (docs/operations.md, Processor settings). "
        "Values are sealed at rest; secrets are never shown. Exit status: 0 done, 1 refused "
        "(the reason on stderr), 2 usage.",
    )
    p_actions = processors.add_subparsers(dest="action", required=True)
    configure = p_actions.add_parser(
        "configure",
        help="set (NAME=VALUE) or remove (--unset NAME) settings of a merchant's processor",
        description="Set some settings of PROCESSOR for MERCHANT; the others stay. Checked "
        "against the processor's declaration (unknown names, its validation, required ones). "
        "A secret is better given with --set-from-env NAME=ENVVAR (out of shell history).",
    )
    configure.add_argument("merchant", help="merchant id or email")
    configure.add_argument("processor", help="a processor name (see `paygate plugins`)")
    _setting_arguments(configure, "values")
    configure.add_argument("--unset", action="append", metavar="NAME", help="remove a value")
    show = p_actions.add_parser(
        "show",
        help="show a merchant's processor settings (secrets as set/unset only)",
        description="The merchant's settings for PROCESSOR (default: its processor, and every "
        "other processor it has settings for). Secret values are never shown.",
    )
    show.add_argument("merchant", help="merchant id or email")
    show.add_argument("processor", nargs="?", help="a processor name")
    show.add_argument("--json", action="store_true")
    clear = p_actions.add_parser(
        "clear", help="remove every setting of a merchant for a processor (even unreadable ones)"
    )
    clear.add_argument("merchant", help="merchant id or email")
    clear.add_argument("processor", help="a processor name")
    p_actions.add_parser(
        "reseal",
        help="re-seal every stored configuration under the first PAYGATE_ENCRYPTION_KEYS key",
        description="Key rotation: put the new key first in PAYGATE_ENCRYPTION_KEYS (keep the "
        "old one after it), run this, then drop the old key. Exit 1 if some configuration "
        "opens with no configured key (each is named).",
    )
    processors.set_defaults(func=cmd_processors)

    # The developer CLI: HTTP to a running gateway through paygate_client (paygate.devcli).
    command = devcli.command_factory(sub)
    devlisten.add_parser(command)
    devtrigger.add_parser(command)
    devcli.add_commands(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        # Another command next to a running `paygate up` uses its databases (paygate.runfile).
        given = {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url}
        # (Not the developer CLI's commands: they talk HTTP only.)
        local = args.command == "up" or args.command in devcli.DEV_COMMANDS
        found = {} if local else runfile.environment(settings.state_dir, given)
        if found:
            settings = Settings.from_env(**found)
        if args.command in CHECKS_SETTINGS:
            settings.check_startup()
    except ValueError as exc:
        print(f"paygate: {exc}", file=sys.stderr)
        return 2
    _setup_logging(settings.log_level, settings.log_format)
    if found:
        log.info(
            "using the databases of the paygate up running on %s",
            runfile.path(settings.state_dir).parent.resolve(),
        )
    try:
        if args.command in STARTS_PROCESSES:
            check_plugins(settings)
        code = args.func(args, settings)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except PluginError as exc:
        print(f"paygate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _closed_stdout()


def _closed_stdout() -> int:
    """Whoever read our output went away (``paygate plugins | head``): stop quietly, as a
    Unix tool killed by SIGPIPE does (128 + 13), with stdout pointed at /dev/null so the
    interpreter's last flush does not complain."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is no real file (a test's capture): nothing will be flushed to it
    finally:
        os.close(devnull)
    return 141


if __name__ == "__main__":
    sys.exit(main())
