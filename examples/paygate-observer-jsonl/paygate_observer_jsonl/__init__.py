"""An example event observer: every event of every merchant appended to a JSON Lines file.

Installed as the plugin ``jsonl`` (entry point group ``paygate``), configured with
``PAYGATE_PLUGIN_JSONL_PATH`` (the file; its directory must exist) and optionally
``PAYGATE_PLUGIN_JSONL_FSYNC=false`` (skip the fsync after each line). Without a path it
registers nothing, so installing it never breaks a gateway; it says so at DEBUG only (every
``paygate`` process and command loads plugins: an INFO line would repeat in each), and
``paygate observers`` shows it as not installed.

Each line is one event: ``{"id", "type", "sequence", "merchant_id", "resource_id",
"created_at", "event"}`` where ``event`` is the envelope webhooks send. Delivery is at least
once: after a crash between writing a line and the gateway recording it, the line is written
again, so readers drop repeats by ``id``. A write that fails (the directory gone, the disk full)
raises, and the gateway retries the same event with back-off; the events after it wait.
"""

from __future__ import annotations

import json
import os

from paygate import Event, PluginContext, hookimpl

__version__ = "0.1.0"
# The plugin API this plugin needs (uses context and paygate_register_observers): checked by the gateway at load.
paygate_api = ">=1.1,<2"

NAME = "jsonl"


def line_of(event: Event) -> bytes:
    """The event as one JSON line (newline included)."""
    record = {
        "id": event.id,
        "type": event.type,
        "sequence": event.sequence,
        "merchant_id": event.merchant_id,
        "resource_id": event.resource_id,
        "created_at": event.created_at.isoformat(),
        "event": json.loads(event.body),
    }
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


class JsonlObserver:
    """Appends each event to ``path`` in one write, durable before ``observe`` returns."""

    name = NAME

    def __init__(self, path: str, fsync: bool = True):
        self.path = path
        self.fsync = fsync

    def observe(self, event: Event) -> None:
        # O_APPEND without O_CREAT on the directory: a missing directory (an unmounted sink)
        # fails here and the gateway retries, instead of writing somewhere unexpected.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            data = line_of(event)
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes")
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)


def _flag(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off")


@hookimpl
def paygate_register_observers(register, context: PluginContext) -> None:
    path = context.config.get("path")
    if not path:
        # Quiet: every process (each gunicorn worker, each CLI command) loads plugins, so a
        # louder line would repeat a dozen times. `paygate observers` is where it shows.
        context.log.debug(
            "the jsonl observer is installed but PAYGATE_PLUGIN_JSONL_PATH is not set: "
            "no observer registered, no events written"
        )
        return
    register(JsonlObserver(path, fsync=_flag(context.config.get("fsync", "true"))))
