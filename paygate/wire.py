"""Bytes on the wire: JSON exactly as JavaScript's ``JSON.stringify`` prints it.

Webhook receivers often re-serialize the parsed body before checking the signature, so the bytes
we sign must be what ``JSON.stringify(JSON.parse(body))`` gives back: no spaces, UTF-8 rather than
``\\u`` escapes, integers without ``.0``. API responses use the same function.
"""

from __future__ import annotations

from typing import Any

import orjson


def compact_json(value: Any) -> bytes:
    """Serialize ``value`` compactly to UTF-8 bytes (money is always int, never float)."""
    return orjson.dumps(value, default=_refuse)


def _refuse(value: Any) -> Any:
    raise TypeError(f"cannot serialize {type(value).__name__} to the wire")
