"""kitlog: an observer that appends every event to a JSON Lines file.

The file is ``PAYGATE_PLUGIN_KITLOG_PATH`` (default ``paygate-events.jsonl``); one line per
event: its id, type, merchant and sequence. A write that fails raises, so the gateway gives
the same event again later.
"""

from __future__ import annotations

import json
from pathlib import Path

from paygate import Event, hookimpl

__version__ = "0.1.0"


class JsonLinesObserver:
    name = "kitlog"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def observe(self, event: Event) -> None:
        line = {
            "id": event.id,
            "type": event.type,
            "merchant_id": event.merchant_id,
            "sequence": event.sequence,
        }
        with open(self.path, "a", encoding="utf-8") as sink:
            sink.write(json.dumps(line) + "\n")

    def lines(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines()]


@hookimpl
def paygate_register_observers(register, context):
    register(JsonLinesObserver(context.config.get("path", "paygate-events.jsonl")))
