"""How every ``paygate`` command finds the running ``paygate up`` of the same state directory.

``paygate up`` writes ``<state dir>/run.json`` (mode 0600: it holds the database URLs) once its
database is ready, and removes it when it stops. A command started without ``DATABASE_URL``
(``paygate merchants set-processor`` in another terminal, say) reads it, checks that the
process that wrote it is still alive, and uses the same PostgreSQL and Redis, so nobody copies
an embedded server's URL (whose port may change at every start) by hand. The state directory
is ``PAYGATE_STATE_DIR`` (default ``.paygate`` in the working directory), as for ``paygate up``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

RUN_FILE = "run.json"
# What a command takes over from the running ``paygate up`` when its own environment lacks it.
SHARED = ("DATABASE_URL", "REDIS_URL")


def path(state_dir: str | os.PathLike) -> Path:
    return Path(state_dir).expanduser() / RUN_FILE


def write(state_dir: str | os.PathLike, env: Mapping[str, str]) -> Path:
    """Record this process (``paygate up``) and the URLs its children use; readable by the
    owner only. Replaces a file left by an earlier run."""
    target = path(state_dir)
    record = {"pid": os.getpid(), **{name: env[name] for name in SHARED if env.get(name)}}
    temporary = target.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(record, out)
    os.chmod(temporary, 0o600)  # an older file of the same name may have had another mode
    os.replace(temporary, target)
    return target


def remove(state_dir: str | os.PathLike) -> None:
    """Forget the record, if it is ours (a second ``paygate up`` may have replaced it)."""
    record = _read(path(state_dir))
    if record is not None and record.get("pid") == os.getpid():
        path(state_dir).unlink(missing_ok=True)


def running(state_dir: str | os.PathLike) -> dict | None:
    """The record of a ``paygate up`` that is running on this state directory, or None (no
    file, unreadable, or its process is gone: a ``kill -9`` leaves a stale file behind)."""
    record = _read(path(state_dir))
    if record is None or not isinstance(record.get("pid"), int) or not _alive(record["pid"]):
        return None
    return record


def environment(state_dir: str | os.PathLike, env: Mapping[str, str | None]) -> dict[str, str]:
    """What a command takes from the running ``paygate up``: each of ``SHARED`` that ``env``
    does not set (empty when nothing runs, or when ``env`` sets ``DATABASE_URL`` itself: a
    command pointed at a database keeps it, and never mixes it with another gateway's Redis)."""
    if env.get("DATABASE_URL"):
        return {}
    record = running(state_dir)
    if record is None:
        return {}
    return {name: record[name] for name in SHARED if record.get(name) and not env.get(name)}


def _read(file: Path) -> dict | None:
    try:
        record = json.loads(file.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True
