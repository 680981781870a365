"""Task messages on the queue as plain JSON data: a task's name and its ids, nothing to execute.

Huey's default serializer is pickle, and unpickling runs whatever the bytes say: anyone who can
write to Redis could make the worker run code. Paygate's tasks take ids and nothing else (no
retries, no eta, no keyword arguments: the database says what is due and when), so a message is
``{"v": 1, "id": <task id>, "name": <registered task name>, "args": [<id strings>]}``.

Anything else read from the queue (pickle bytes, bad JSON, an unknown task, other keys, args
that are not strings) is refused: one WARNING line that names the reason, never the contents,
and the message is dropped unexecuted. Nothing is lost: the record in PostgreSQL is the truth
and the janitor dispatches every row that is still due.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from huey.registry import Message
from huey.serializer import Serializer

log = logging.getLogger(__name__)

VERSION = 1
KEYS = frozenset(("v", "id", "name", "args"))
# The longest message a Paygate task makes is a few hundred bytes; reading more is pointless.
MAX_BYTES = 4096
# One encoder: json.dumps with any option builds a new one per call, which costs more than the
# encoding of a message this small.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


class RefusedMessage(ValueError):
    """A message read from the queue that is not a Paygate task; ``reason`` is safe to log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def encode(task_id: str, name: str, args: list[str]) -> bytes:
    """The bytes of the message that runs task ``name`` with ``args`` (its id ``task_id``): what
    the serializer writes for a plain task, for a caller that enqueues without a Task object."""
    return _ENCODER.encode({"v": VERSION, "id": task_id, "name": name, "args": args}).encode()


def plain_message(task_id: str, name: str, args: tuple) -> Message:
    # Huey's defaults for a task enqueued without options, as Registry.create_message makes them.
    return Message(task_id, name, None, 0, 0, None, args, {}, None, None, None, None, None, None, 0)


# The fields of a plain message between its name and its args (eta, retries, retry_delay,
# priority), and after them (kwargs, on_complete, ..., retry_backoff): Huey's defaults.
_PLAIN_MIDDLE = plain_message("", "", ())[2:6]
_PLAIN_TAIL = plain_message("", "", ())[7:]


def _plain(message: Message) -> bool:
    """True when ``message`` uses nothing but a name, an id and positional string args."""
    return (
        message[2:6] == _PLAIN_MIDDLE
        and message[7:] == _PLAIN_TAIL
        and isinstance(message.id, str)
        and all(isinstance(arg, str) for arg in message.args)
    )


class JsonTaskSerializer(Serializer):
    """Task messages as JSON; refuses to write or read anything else (see the module docstring).

    ``known`` says whether a task name is registered (tasks register after the Huey instance is
    built, so it is asked when a message is read).
    """

    def __init__(self, known: Callable[[str], bool]):
        super().__init__()
        self.known = known

    def _serialize(self, data: Any) -> bytes:
        if type(data) is not Message or not _plain(data):
            # A programming error, caught at enqueue: say so before anything reaches Redis.
            raise TypeError(
                "Paygate task messages carry a task name and string ids only "
                "(no retries, eta, kwargs, results or pipelines)"
            )
        return encode(data.id, data.name, list(data.args))

    def _deserialize(self, data: bytes) -> Message:
        try:
            return self._read(data)
        except RefusedMessage as refused:
            log.warning(
                "refused a queue message (%s, %d bytes): dropped, not executed; the janitor "
                "dispatches due work from the database",
                refused.reason,
                len(data) if isinstance(data, bytes | str) else 0,
            )
            raise

    def _read(self, data: bytes) -> Message:
        if not isinstance(data, bytes | str):
            raise RefusedMessage("not bytes")
        if len(data) > MAX_BYTES:
            raise RefusedMessage("too long")
        if data[:1] in (b"\x80", "\x80"):
            raise RefusedMessage("pickle data")
        try:
            record = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise RefusedMessage("not JSON") from None
        if not isinstance(record, dict):
            raise RefusedMessage("not a JSON object")
        if record.keys() != KEYS:
            raise RefusedMessage("unexpected or missing keys")
        if record["v"] != VERSION or isinstance(record["v"], bool):
            raise RefusedMessage("unknown version")
        task_id, name, args = record["id"], record["name"], record["args"]
        if not isinstance(task_id, str) or not isinstance(name, str):
            raise RefusedMessage("id or name not a string")
        if not self.known(name):
            raise RefusedMessage("unknown task name")
        if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
            raise RefusedMessage("args not a list of strings")
        return plain_message(task_id, name, tuple(args))
