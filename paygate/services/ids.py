"""Public ids: a prefix and 16 characters of [A-Za-z0-9] from a CSPRNG."""

from __future__ import annotations

import secrets
import string

ALPHABET = string.ascii_letters + string.digits
ID_LENGTH = 16


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(ID_LENGTH))


def order_id() -> str:
    return new_id("order_")


def payment_id() -> str:
    return new_id("pay_")


def refund_id() -> str:
    return new_id("rfnd_")
