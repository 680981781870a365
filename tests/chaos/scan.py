"""The data-at-rest scan: card numbers, CVVs and holder names must not be anywhere we keep data.

Each needle is looked for as typed (digits, grouped with spaces or dashes) and hex-encoded (how
pg_dump writes ``bytea``). A CVV is three or four digits that occur everywhere by chance, so it
counts as leaked only next to its field name; the field name itself (as a word, or a JSON key
in hex) must not be in the database, Redis or a webhook body at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


def _forms(text: str) -> list[bytes]:
    raw = text.encode()
    forms = [raw, raw.hex().encode(), raw.hex().upper().encode()]
    if text.isdigit() and len(text) == 16:
        for sep in (" ", "-"):
            grouped = sep.join(text[i : i + 4] for i in range(0, 16, 4)).encode()
            forms += [grouped, grouped.hex().encode()]
    return forms


@dataclass(frozen=True)
class Needles:
    card_numbers: tuple[str, ...]
    cvv: str
    holder: str

    def patterns(self, strict: bool) -> list[tuple[str, re.Pattern[bytes]]]:
        """(what, pattern) pairs. ``strict`` (database, Redis, webhooks): no ``cvv`` at all."""
        found = [
            (f"card number {n[:4]}...{n[-4:]}", re.compile(re.escape(form)))
            for n in self.card_numbers
            for form in _forms(n)
        ]
        found += [("holder name", re.compile(re.escape(f), re.I)) for f in _forms(self.holder)]
        cvv = re.escape(self.cvv.encode())
        near = rb"(?i)(?<![a-z0-9])cvv[^0-9a-z]{0,8}" + cvv + rb"(?![0-9])"
        found.append(("cvv value", re.compile(near)))
        if strict:  # the word on its own (random ids contain "cVv"), or a JSON key in hex
            found.append(("cvv field", re.compile(rb"(?i)(?<![a-z0-9])cvv(?![a-z0-9])")))
            found += [("cvv field", re.compile(re.escape(f))) for f in _forms('"cvv"')[1:]]
        return found


def find_leaks(sources: Iterable[tuple[str, bytes]], needles: Needles, strict: bool) -> list[str]:
    """``where: what`` for every needle found in every (name, data) source."""
    patterns = needles.patterns(strict)
    leaks = []
    for name, data in sources:
        for what, pattern in patterns:
            match = pattern.search(data)
            if match:
                start = max(0, match.start() - 40)
                context = data[start : match.end() + 40].decode("utf-8", "replace")
                leaks.append(f"{name}: {what} in ...{context!r}...")
    return leaks


def read_files(paths: Iterable[Path]) -> list[tuple[str, bytes]]:
    return [(str(path), path.read_bytes()) for path in paths]
