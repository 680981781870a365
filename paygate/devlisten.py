"""``paygate listen``: poll the merchant's events feed and forward each event to a URL on the
developer's machine, with the body and headers a real delivery carries (docs/cli.md).

With ``--duplicate``, ``--reorder`` and ``--delay`` it delivers the way networks do: each
event twice (same ``webhook-id``, same signature), in shuffled order, late. One thread does
everything: it polls the feed every ``--interval``, puts each wanted event (and its duplicate)
on a schedule at now + its delay, and POSTs what is due. ``Listener`` holds the schedule; its
clock and random source are injected, so the shuffles and delays are testable.
"""

from __future__ import annotations

import argparse
import fnmatch
import heapq
import itertools
import json
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from paygate_client import (
    APIConnectionError,
    APIError,
    Paygate,
    PaygateError,
    RateLimitError,
    ServiceUnavailableError,
)
from paygate_client.models import FeedEvent

from . import events
from .config import Settings
from .devcli import INTERRUPTED, client_for, report

FORWARD_TIMEOUT = 10.0  # seconds for one forwarded POST, answer included
ANSWER_SHOWN = 80  # characters of the answer's body on a text line (JSON: ANSWER_KEPT)
ANSWER_KEPT = 1000
# --reorder shuffles what it holds once it holds this many events or the first has waited
# this long (seconds): a poll's batch, and the events of a short window across polls.
REORDER_HOLD = 10
REORDER_WINDOW = 1.0
RETRY_MAX = 5.0  # seconds between polls while the gateway is unreachable, at most
UNREACHABLE = (APIConnectionError, APIError, ServiceUnavailableError)


@dataclass(frozen=True)
class Options:
    forward_to: str
    patterns: tuple[str, ...] = ()  # empty: every event
    duplicate: bool = False
    reorder: bool = False
    delay: tuple[float, float] | None = None  # (min, max) seconds; equal: a fixed delay
    interval: float = 0.5

    def wants(self, event: str) -> bool:
        return not self.patterns or any(fnmatch.fnmatchcase(event, p) for p in self.patterns)

    def flags(self) -> str:
        shown = [f"--{name}" for name in ("duplicate", "reorder") if getattr(self, name)]
        if self.delay:
            low, high = self.delay
            shown.append(f"--delay {low:g}" + (f"-{high:g}" if high != low else ""))
        return " ".join(shown) or "none"


@dataclass(order=True)
class Scheduled:
    """One POST to make at ``due`` (the listener's clock); ``copy`` 2 is a duplicate."""

    due: float
    order: int
    item: FeedEvent = field(compare=False)
    copy: int = field(default=1, compare=False)


class Listener:
    """The feed's cursor, the events held for --reorder, and the schedule of POSTs."""

    def __init__(
        self,
        client: Paygate | None,
        options: Options,
        *,
        rng: random.Random | None = None,
        post: Callable[..., requests.Response] | None = None,
    ) -> None:
        self.client = client
        self.options = options
        self.rng = rng or random.Random()
        self.cursor: str | None = None
        self.held: list[tuple[float, FeedEvent]] = []
        self.schedule: list[Scheduled] = []
        self._order = itertools.count()
        if post is None:
            session = requests.Session()
            session.trust_env = False  # straight to the URL: no proxy, no .netrc credentials
            post = session.post
        self.post = post

    def start(self) -> None:
        """Begin at the head of the merchant's log: what happens from now on."""
        self.cursor = self.client.events.feed().cursor

    def poll(self, now: float) -> bool:
        """Read the next page of the feed; True when more waits (poll again at once)."""
        page = self.client.events.feed(after=self.cursor)
        self.accept([e for e in page.data if self.options.wants(e.event)], now)
        self.cursor = page.cursor
        return page.has_more

    def accept(self, items: list[FeedEvent], now: float) -> None:
        if not self.options.reorder:
            self.plan(items, now)
            return
        self.held.extend((now, item) for item in items)
        self.release_held(now)

    def release_held(self, now: float) -> None:
        """--reorder: shuffle and schedule what is held once it is enough or old enough."""
        if not self.held:
            return
        if len(self.held) < REORDER_HOLD and now - self.held[0][0] < REORDER_WINDOW:
            return
        items = [item for _, item in self.held]
        self.held.clear()
        self.rng.shuffle(items)
        self.plan(items, now)

    def plan(self, items: list[FeedEvent], now: float) -> None:
        for item in items:
            for copy in (1, 2) if self.options.duplicate else (1,):
                due = now + self.pick_delay()
                heapq.heappush(self.schedule, Scheduled(due, next(self._order), item, copy))

    def pick_delay(self) -> float:
        if self.options.delay is None:
            return 0.0
        low, high = self.options.delay
        return low if high == low else self.rng.uniform(low, high)

    def due(self, now: float) -> list[Scheduled]:
        """The POSTs due by ``now``, in the order they fall due."""
        out = []
        while self.schedule and self.schedule[0].due <= now:
            out.append(heapq.heappop(self.schedule))
        return out

    def next_wake(self, now: float, next_poll: float) -> float:
        wake = next_poll
        if self.schedule:
            wake = min(wake, self.schedule[0].due)
        if self.held:
            wake = min(wake, self.held[0][0] + REORDER_WINDOW)
        return max(wake, now)

    def forward(self, scheduled: Scheduled) -> dict[str, Any]:
        """POST one event's body with its headers, verbatim; what happened, as a record."""
        item = scheduled.item
        record: dict[str, Any] = {
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "event": item.event,
            "id": item.id,
            "webhook_id": _header(item.headers, "webhook-id"),
            "duplicate": scheduled.copy > 1,
            "url": self.options.forward_to,
        }
        try:
            response = self.post(
                self.options.forward_to,
                data=item.body.encode("utf-8"),
                headers=item.headers,
                timeout=FORWARD_TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            record.update(status=None, error=f"{type(exc).__name__}: {_first_line(exc)}")
            return record
        record.update(
            status=response.status_code,
            reason=response.reason,
            body=response.text[:ANSWER_KEPT],
        )
        return record


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""


def describe(record: dict[str, Any]) -> str:
    """One delivery as a line: time, event, id, the outcome, the start of the answer."""
    copy = " (duplicate)" if record["duplicate"] else ""
    if record.get("status") is None:
        outcome = f"-> failed: {record['error']}"
    else:
        answer = " ".join((record.get("body") or "").split())
        if len(answer) > ANSWER_SHOWN:
            answer = answer[: ANSWER_SHOWN - 3] + "..."
        outcome = f"-> {record['status']} {record['reason']}" + (f"  {answer}" if answer else "")
    return f"{record['time']}  {record['event']:<17} {record['id']}{copy}  {outcome}"


# -- the command --------------------------------------------------------------------------------


class Stopped(BaseException):
    """SIGTERM or SIGHUP arrived: stop as Ctrl-C does (a BaseException, like
    KeyboardInterrupt, so no ``except Exception`` on the way swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _stop(signum: int, frame: object) -> None:
    raise Stopped(signum)


def catch_stop_signals() -> dict[int, Any]:
    """SIGTERM and SIGHUP raise ``Stopped`` (one that is ignored, as under ``nohup``, stays
    ignored); the handlers they had, to put back."""
    previous = {}
    for signum in STOP_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, _stop)
    return previous


def loop(
    listener: Listener,
    show: Callable[[dict[str, Any]], None],
    notice: Callable[[str], None],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    until: Callable[[], bool] = lambda: False,
) -> None:
    """Poll, schedule and forward until ``until()`` (or Ctrl-C). An unreachable or failing
    gateway is polled again with back-off from the same cursor: nothing is missed."""
    interval = listener.options.interval
    next_poll = clock()
    failing = 0.0  # the current back-off while the gateway is unreachable
    while not until():
        now = clock()
        if now >= next_poll:
            try:
                more = listener.poll(now)
            except RateLimitError as error:
                next_poll = now + (error.retry_after or interval)
            except UNREACHABLE as error:
                failing = min(failing * 2 or interval, RETRY_MAX)
                why = (
                    "no answer"
                    if isinstance(error, APIConnectionError)
                    else f"{error.code}: {error.description}"[:200]
                )
                notice(
                    f"gateway unreachable ({why}); retrying in {failing:g} s from the same place"
                )
                next_poll = now + failing
            else:
                if failing:
                    notice("gateway reachable again; catching up")
                    failing = 0.0
                next_poll = now if more else now + interval
        listener.release_held(now)
        for scheduled in listener.due(now):
            show(listener.forward(scheduled))
        now = clock()
        sleep(max(listener.next_wake(now, next_poll) - now, 0.0))


def cmd_listen(args: argparse.Namespace, settings: Settings) -> int:
    options = Options(
        forward_to=args.forward_to,
        patterns=args.events,
        duplicate=args.duplicate,
        reorder=args.reorder,
        delay=args.delay,
        interval=args.interval,
    )
    client = client_for(args, settings, retries=0)  # the loop retries, keeping its cursor
    listener = Listener(client, options)
    forwarded = 0

    def show(record: dict[str, Any]) -> None:
        nonlocal forwarded
        forwarded += 1
        print(json.dumps(record) if args.json else describe(record), flush=True)

    def notice(text: str) -> None:
        print(f"paygate listen: {text}", file=sys.stderr, flush=True)

    previous = catch_stop_signals()
    try:
        try:
            config = client.webhooks.get_config()
            listener.start()
        except PaygateError as error:
            return report(error)
        banner = [
            f"paygate listen: forwarding the events of merchant {client.api_key} "
            f"(at {client.base_url})",
            f"  to       {options.forward_to}",
            f"  events   {', '.join(options.patterns) or 'all'}",
            f"  options  {options.flags()}",
            "  note     this only forwards: the gateway's own deliveries "
            + (
                f"to {config.webhook_url} still happen as usual"
                if config.webhook_url
                else "(none now: no webhook_url is set) are unchanged"
            ),
            "Ready. Waiting for events (Ctrl-C or SIGTERM to stop).",
        ]
        out = sys.stderr if args.json else sys.stdout
        print("\n".join(banner), file=out, flush=True)
        try:
            loop(listener, show, notice)
        except PaygateError as error:  # refused (a revoked key, say): stop
            return report(error)
    except (KeyboardInterrupt, Stopped) as stop:
        pending = len(listener.schedule) + len(listener.held)
        left = f"; {pending} scheduled deliveries dropped" if pending else ""
        notice(f"stopped after {forwarded} deliveries{left}")
        # 128 + the signal, as a shell reports a process it ended: 130, 143 (TERM), 129 (HUP).
        return 128 + stop.signum if isinstance(stop, Stopped) else INTERRUPTED
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


# -- arguments ----------------------------------------------------------------------------------


def forward_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {text!r}")
    return text


def event_patterns(text: str) -> tuple[str, ...]:
    patterns = tuple(p.strip() for p in text.split(",") if p.strip())
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in events.NAMES):
            raise argparse.ArgumentTypeError(
                f"{pattern!r} matches no event; events: {', '.join(events.NAMES)}"
            )
    return patterns


def delay_range(text: str) -> tuple[float, float]:
    low_text, _, high_text = text.partition("-")
    try:
        low = float(low_text)
        high = float(high_text) if high_text else low
    except ValueError:
        low = high = -1.0
    if not 0 <= low <= high < 3600:
        raise argparse.ArgumentTypeError(
            f"not a delay: {text!r} (seconds like 2, or a range like 0.5-3)"
        )
    return (low, high)


def interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.05 <= value <= 60:
        raise argparse.ArgumentTypeError(f"not an interval: {text!r} (0.05 to 60 seconds)")
    return value


def add_parser(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Register ``listen`` with ``devcli.command_factory``'s ``command``."""
    listen = command(
        "listen",
        "forward the merchant's webhook events to a local URL, signed as real deliveries",
        "Stream the merchant's events, from now on, to --forward-to: each POSTed with exactly "
        "the body and headers a real delivery carries (X-Webhook-Signature and the Standard "
        "Webhooks headers, signed with the merchant's webhook secret), so your handler "
        "verifies them as in production. One line per delivery: time, event, event id, the "
        "answer's status and the start of its body.\n\n"
        "It only forwards: the gateway's own deliveries to the merchant's webhook_url still "
        "happen as usual.\n\n"
        "Deliver the way networks do, to prove a handler idempotent and order-independent:\n"
        "  --duplicate  every event twice (same webhook-id, body and signature)\n"
        "  --reorder    events shuffled (a poll's batch, and those of a 1 s window)\n"
        "  --delay      each delivery late: a fixed delay (2) or a random one (0.5-3)",
        "examples:\n"
        "  paygate listen --forward-to http://127.0.0.1:5000/hooks\n"
        "  paygate listen --forward-to http://localhost:4242/webhook --events 'payment.*'\n"
        "  paygate listen --forward-to http://127.0.0.1:5000/hooks --duplicate --reorder "
        "--delay 0.5-3\n"
        "  paygate listen --forward-to http://127.0.0.1:5000/hooks --json | jq .status",
    )
    listen.add_argument(
        "--forward-to", required=True, type=forward_url, metavar="URL", help="where to POST"
    )
    listen.add_argument(
        "--events",
        type=event_patterns,
        default=(),
        metavar="LIST",
        help="comma-separated names or patterns, e.g. payment.success,refund.* (default all)",
    )
    listen.add_argument("--duplicate", action="store_true", help="deliver every event twice")
    listen.add_argument("--reorder", action="store_true", help="shuffle the order of deliveries")
    listen.add_argument(
        "--delay",
        type=delay_range,
        metavar="SECONDS|MIN-MAX",
        help="hold each delivery this long (a range: random within it)",
    )
    listen.add_argument(
        "--interval",
        type=interval,
        default=0.5,
        metavar="SECONDS",
        help="how often to ask the gateway for new events (0.5)",
    )
    listen.set_defaults(func=cmd_listen)
