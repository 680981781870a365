"""``python -m bench --profile``: py-spy profiles of the API (during B1) and the worker
(during B4) in run 1, saved next to the results as collapsed stacks (open them in speedscope)
plus a text summary of where the time goes: inclusive share of the frames that matter."""

from __future__ import annotations

import collections
import shutil
import signal
import subprocess
from contextlib import contextmanager
from pathlib import Path

PROFILED = {"B1": "api", "B4": "worker"}


@contextmanager
def recording(pid: int, out: Path, *, gil_only: bool = True):
    """py-spy record on ``pid`` and its children while the block runs (no-op without py-spy)."""
    binary = shutil.which("py-spy")
    if binary is None:
        yield None
        return
    argv = [
        binary,
        "record",
        "-p",
        str(pid),
        "--subprocesses",
        "-r",
        "200",
        "-f",
        "raw",
        "-o",
        str(out),
        "--nonblocking",
    ]
    if gil_only:
        argv.append("--gil")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield out
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _frame(text: str) -> str:
    name, _, where = text.partition(" (")
    return f"{name} ({where.split(':')[0]}" if where else name


def profile_summary(raw: Path, top: int = 40) -> str:
    """Inclusive share of each frame (function + file) across all samples."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        for frame in {_frame(f) for f in stack.split(";")}:
            inclusive[frame] += n
    if not total:
        return "(no samples)"
    lines = [f"{total} samples (GIL held); inclusive share of each frame:"]
    lines += [f"{n / total * 100:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)
