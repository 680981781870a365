"""Per-merchant processor settings (issue 16): declared by the processor, set by operators,
sealed at rest, handed to every operation as ``config``.

A processor declares ``settings`` (``ProcessorSetting``: name, description, required, secret,
validate). A merchant's values for one processor are one JSON document, sealed with AES-256-GCM
(``cryptography``): ``v1:`` + base64(nonce || ciphertext || tag), a random 96-bit nonce per
sealing, the merchant id and the processor name as associated data (a sealed document copied to
another merchant's or processor's row does not open). The keys live outside the database:
``PAYGATE_ENCRYPTION_KEYS`` (``id:base64url(32 bytes)``, comma-separated, the first seals, all
open), else one key derived from the master key (``keys.derived_key``) with id ``master``. The
row names the key that sealed it; ``reseal`` rewrites every row under the first key (rotation:
docs/operations.md). A document that does not open is refused (``ProcessorConfigUnreadable``),
never used as it is.

``values_for`` is on the path of every processor operation, so it is cheap: a processor that
declares no settings costs no query, the stored row is cached per process for
``CACHE_SECONDS`` and the opened document per sealed value. A change made in this process is
seen at once; one made elsewhere (the CLI, another API process, the dashboard) within
``CACHE_SECONDS``. Values are never logged, never put in Redis.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..config import MASTER_KEY_ID
from ..db import processor_configs as repo
from ..db.rows import SEALED_PREFIX
from ..errors import (
    PROCESSOR_SETTING_INVALID,
    PROCESSOR_SETTING_NOT_TEXT,
    PROCESSOR_SETTING_REQUIRED,
    PROCESSOR_SETTING_UNKNOWN,
    BadRequest,
    ProcessorConfigUnreadable,
    ProcessorNotConfigured,
)
from ..plugins import declared_settings
from ..types import ProcessorConfig, ProcessorSetting
from . import Context
from .keys import derived_key

log = logging.getLogger(__name__)

KEY_LABEL = "processor-config-encryption"
NONCE_BYTES = 12
# A change made in another process reaches ``values_for`` within this many seconds.
CACHE_SECONDS = 5.0
CACHE_LIMIT = 10_000
MAX_VALUE_LENGTH = 4096

_rows: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}
_opened: dict[tuple[bytes, str, str, str], dict[str, str]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class SettingState:
    """One declared setting for one merchant: never a secret's value."""

    name: str
    description: str
    required: bool
    secret: bool
    is_set: bool
    value: str | None  # None for a secret (shown as set/unset only) or an unset value

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "required": self.required,
            "secret": self.secret,
            "set": self.is_set,
            **({} if self.secret else {"value": self.value}),
        }


@dataclass(frozen=True)
class Description:
    """What ``describe`` shows of one merchant's settings for one processor."""

    merchant_id: str
    processor: str
    settings: tuple[SettingState, ...]
    missing: tuple[str, ...]  # required settings without a value
    undeclared: tuple[str, ...]  # stored names the processor no longer declares
    updated_at: datetime | None
    updated_by: str | None
    key_id: str | None
    error: str | None = None  # the stored document does not open

    @property
    def ready(self) -> bool:
        return self.error is None and not self.missing

    def as_dict(self) -> dict[str, Any]:
        return {
            "merchant_id": self.merchant_id,
            "processor": self.processor,
            "settings": [s.as_dict() for s in self.settings],
            "missing": list(self.missing),
            "undeclared": list(self.undeclared),
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "updated_by": self.updated_by,
            "key_id": self.key_id,
            "error": self.error,
        }


@dataclass(frozen=True)
class ResealReport:
    resealed: int
    current: int  # already under the first key
    unreadable: tuple[tuple[str, str, str], ...]  # (merchant_id, processor, key_id)


# -- declarations ---------------------------------------------------------------------------------


def declared(ctx: Context, processor: str) -> tuple[ProcessorSetting, ...]:
    """The settings ``processor`` declares (none for a version 1 processor). Raises
    ``UnknownProcessor`` for a processor that is not registered."""
    return declared_settings(ctx.plugins.processor(processor))


# -- keys and sealing -----------------------------------------------------------------------------


def keyring(ctx: Context) -> list[tuple[str, bytes]]:
    """The configured keys in order: the first seals, every one opens."""
    configured = ctx.settings.encryption_keys
    if not configured:
        return [(MASTER_KEY_ID, derived_key(ctx, KEY_LABEL))]
    return [
        (key_id, key if key is not None else derived_key(ctx, KEY_LABEL))
        for key_id, key in configured
    ]


def _associated(merchant_id: str, processor: str) -> bytes:
    return json.dumps([str(merchant_id), processor]).encode("utf-8")


def _seal(ctx: Context, merchant_id: str, processor: str, values: Mapping[str, str]):
    key_id, key = keyring(ctx)[0]
    nonce = os.urandom(NONCE_BYTES)
    document = json.dumps(dict(sorted(values.items())), ensure_ascii=False).encode("utf-8")
    sealed = AESGCM(key).encrypt(nonce, document, _associated(merchant_id, processor))
    return SEALED_PREFIX + base64.b64encode(nonce + sealed).decode("ascii"), key_id


def _open(ctx: Context, row: Mapping[str, Any]) -> dict[str, str]:
    """The values a stored row holds; ``ProcessorConfigUnreadable`` when no key opens it."""
    merchant_id, processor = str(row["merchant_id"]), row["processor"]
    sealed, key_id = row["sealed"], row["key_id"]
    ring = keyring(ctx)
    # The named key first; the others too (a key renamed in the variable keeps working).
    ordered = sorted(ring, key=lambda item: item[0] != key_id)
    for _, key in ordered:
        cache_key = (key, merchant_id, processor, sealed)
        opened = _opened.get(cache_key)
        if opened is not None:
            return opened
    if sealed.startswith(SEALED_PREFIX):
        try:
            raw = base64.b64decode(sealed[len(SEALED_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        for _, key in ordered:
            if len(raw) <= NONCE_BYTES:
                break
            try:
                plain = AESGCM(key).decrypt(
                    raw[:NONCE_BYTES], raw[NONCE_BYTES:], _associated(merchant_id, processor)
                )
                values = json.loads(plain.decode("utf-8"))
            except (InvalidTag, ValueError):
                continue
            if not isinstance(values, dict):
                break
            with _lock:
                if len(_opened) >= CACHE_LIMIT:
                    _opened.clear()
                _opened[(key, merchant_id, processor, sealed)] = values
            return values
    log.error(
        "the settings of processor %s for merchant %s (sealed under key %r) do not decrypt "
        "with any key of PAYGATE_ENCRYPTION_KEYS: refused",
        processor,
        merchant_id,
        key_id,
    )
    raise ProcessorConfigUnreadable(processor, key_id)


def forget_cached(merchant_id: str | None = None, processor: str | None = None) -> None:
    """Drop cached rows: one merchant's for one processor, or all."""
    with _lock:
        if merchant_id is None:
            _rows.clear()
        else:
            _rows.pop((str(merchant_id), processor or ""), None)


def _stored(ctx: Context, merchant_id: str, processor: str, conn=None) -> dict[str, Any] | None:
    cache_key = (str(merchant_id), processor)
    now = time.monotonic()
    cached = _rows.get(cache_key)
    if cached is not None and cached[0] > now:
        return cached[1]
    if conn is not None:
        row = repo.stored(conn, merchant_id, processor)
    else:
        with ctx.db.connection() as own:
            row = repo.stored(own, merchant_id, processor)
    with _lock:
        if len(_rows) >= CACHE_LIMIT:
            _rows.clear()
        _rows[cache_key] = (now + CACHE_SECONDS, row)
    return row


# -- reading --------------------------------------------------------------------------------------


def values_for(ctx: Context, merchant_id: str, processor: str, *, conn=None) -> ProcessorConfig:
    """The merchant's values for ``processor``'s settings (read-only; empty when it declares
    none). Raises ``ProcessorNotConfigured`` (400) when a required setting has no value and
    ``ProcessorConfigUnreadable`` (500) when the stored values do not decrypt: the operation
    that needed them is refused. Sees a change made elsewhere within ``CACHE_SECONDS``."""
    settings = declared(ctx, processor)
    if not settings:
        return MappingProxyType({})
    row = _stored(ctx, merchant_id, processor, conn)
    values = _open(ctx, row) if row is not None else {}
    missing = [s.name for s in settings if s.required and not values.get(s.name)]
    if missing:
        raise ProcessorNotConfigured(processor, missing)
    names = {s.name for s in settings}
    return MappingProxyType({k: v for k, v in values.items() if k in names and v})


def describe(ctx: Context, merchant_id: str, processor: str) -> Description:
    """Which settings are set (secrets as set/unset only, other values shown), which required
    ones are missing, who changed them last. Reads the record (no cache)."""
    settings = declared(ctx, processor)
    with ctx.db.connection() as conn:
        row = repo.stored(conn, merchant_id, processor)
    error = None
    values: dict[str, str] = {}
    if row is not None:
        try:
            values = _open(ctx, row)
        except ProcessorConfigUnreadable as exc:
            error = exc.description
    states = tuple(
        SettingState(
            name=s.name,
            description=s.description,
            required=s.required,
            secret=s.secret,
            is_set=bool(values.get(s.name)),
            value=None if s.secret else (values.get(s.name) or None),
        )
        for s in settings
    )
    names = {s.name for s in settings}
    return Description(
        merchant_id=str(merchant_id),
        processor=processor,
        settings=states,
        missing=() if error else tuple(s.name for s in states if s.required and not s.is_set),
        undeclared=tuple(sorted(set(values) - names)),
        updated_at=row["updated_at"] if row else None,
        updated_by=row["updated_by"] if row else None,
        key_id=row["key_id"] if row else None,
        error=error,
    )


def described_for(ctx: Context, merchant_id: str) -> list[Description]:
    """Every registered processor the merchant has values for (in processor order)."""
    with ctx.db.connection() as conn:
        rows = repo.of_merchant(conn, merchant_id)
    return [
        describe(ctx, merchant_id, row["processor"])
        for row in rows
        if row["processor"] in ctx.plugins.processors
    ]


def not_ready(ctx: Context, merchants: Sequence[Any]) -> list[tuple[Any, Description]]:
    """The merchants (active ones passed in) whose processor lacks required settings or whose
    settings do not decrypt, with what is wrong (``paygate plugins``)."""
    found = []
    for merchant in merchants:
        processor = merchant.processor
        if processor not in ctx.plugins.processors or not declared(ctx, processor):
            continue
        described = describe(ctx, merchant.id, processor)
        if not described.ready:
            found.append((merchant, described))
    return found


# -- changing -------------------------------------------------------------------------------------


def _checked(processor: str, settings: Sequence[ProcessorSetting], values: Mapping[str, Any]):
    by_name = {s.name: s for s in settings}
    known = ", ".join(sorted(by_name)) or "none"
    checked: dict[str, str] = {}
    for name, value in values.items():
        setting = by_name.get(name)
        if setting is None:
            raise BadRequest(
                PROCESSOR_SETTING_UNKNOWN.format(processor=processor, name=name, known=known),
                field=str(name),
            )
        if not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH or "\x00" in value:
            problem = PROCESSOR_SETTING_NOT_TEXT.format(max_length=MAX_VALUE_LENGTH)
            raise BadRequest(
                PROCESSOR_SETTING_INVALID.format(name=name, processor=processor, problem=problem),
                field=name,
            )
        if value and setting.validate is not None:
            problem = setting.validate(value)
            if problem:
                raise BadRequest(
                    PROCESSOR_SETTING_INVALID.format(
                        name=name, processor=processor, problem=problem
                    ),
                    field=name,
                )
        checked[name] = value
    return checked


def set_values(
    ctx: Context,
    merchant_id: str,
    processor: str,
    values: Mapping[str, str],
    *,
    actor: str,
    unset: Iterable[str] = (),
) -> Description:
    """Set (an empty value, or a name in ``unset``: remove) some of the merchant's values for
    ``processor``, validated against its declaration: an unknown name, a value its ``validate``
    refuses, or a required setting left without a value is a ``BadRequest`` and nothing
    changes. The others stay as they were. ``actor`` is recorded (``updated_by``)."""
    settings = declared(ctx, processor)
    unset = list(unset)
    changes = _checked(processor, settings, {**values, **dict.fromkeys(unset, "")})
    merchant_id = str(merchant_id)
    with ctx.db.transaction() as conn:
        repo.lock(conn, merchant_id, processor)
        row = repo.stored(conn, merchant_id, processor)
        current = dict(_open(ctx, row)) if row is not None else {}
        merged = {k: v for k, v in {**current, **changes}.items() if v}
        missing = [s.name for s in settings if s.required and not merged.get(s.name)]
        if missing:
            raise BadRequest(
                PROCESSOR_SETTING_REQUIRED.format(
                    processor=processor, merchant=merchant_id, names=", ".join(missing)
                ),
                field=missing[0],
            )
        if merged:
            sealed, key_id = _seal(ctx, merchant_id, processor, merged)
            repo.save(conn, merchant_id, processor, sealed, key_id, actor)
        elif row is not None:
            repo.delete(conn, merchant_id, processor)
    forget_cached(merchant_id, processor)
    return describe(ctx, merchant_id, processor)


def clear(ctx: Context, merchant_id: str, processor: str, *, actor: str) -> bool:
    """Remove every value of the merchant for ``processor`` (works when they do not decrypt:
    the way out after a lost key). True if there were any."""
    with ctx.db.transaction() as conn:
        repo.lock(conn, merchant_id, processor)
        removed = repo.delete(conn, merchant_id, processor)
    forget_cached(merchant_id, processor)
    if removed:
        log.info(
            "%s cleared the settings of processor %s for merchant %s", actor, processor, merchant_id
        )
    return removed


def reseal(ctx: Context) -> ResealReport:
    """Re-seal every stored document under the first key (rotation step 2). A row already
    under it is left alone; a row no key opens is reported, never changed."""
    first_id = keyring(ctx)[0][0]
    resealed = current = 0
    unreadable = []
    with ctx.db.connection() as conn:
        rows = repo.every(conn)
    for row in rows:
        merchant_id, processor = str(row["merchant_id"]), row["processor"]
        if row["key_id"] == first_id:
            try:
                _open(ctx, row)
                current += 1
                continue
            except ProcessorConfigUnreadable:
                unreadable.append((merchant_id, processor, row["key_id"]))
                continue
        try:
            values = _open(ctx, row)
        except ProcessorConfigUnreadable:
            unreadable.append((merchant_id, processor, row["key_id"]))
            continue
        sealed, key_id = _seal(ctx, merchant_id, processor, values)
        with ctx.db.transaction() as conn:
            if repo.replace_sealed(
                conn, merchant_id, processor, old=row["sealed"], new=sealed, key_id=key_id
            ):
                resealed += 1
            else:  # changed meanwhile: the change was sealed under the first key
                current += 1
        forget_cached(merchant_id, processor)
    return ResealReport(resealed=resealed, current=current, unreadable=tuple(unreadable))
