"""The decline-code catalogue: every ``error_code`` a processor should give, what it means,
whether trying again may help, and who it is meant for.

Processors answer refusals with these codes (``ChargeResult.failed(code, description)``,
``RefundResult.failed``, ``TokenResult.refused``); a code outside the list still reaches the
merchant unchanged, but the list is what merchants program against. ``PAYMENT_FAILED`` is the
contract's code for a generic decline. docs/declines.md is generated from ``CATALOGUE``
(``python -m paygate.declines``) and ``tests/test_declines.py`` holds the two together.
"""

from __future__ import annotations

from dataclasses import dataclass

RETRYABLE = "retryable"  # the same request may succeed later (or after the buyer acts)
FINAL = "final"  # asking again will not help: another method, card or amount is needed
BUYER = "buyer"  # safe and useful to show the buyer (the checkout page shows it)
MERCHANT = "merchant"  # for the merchant's staff and systems only


@dataclass(frozen=True)
class Decline:
    code: str
    meaning: str
    kind: str  # RETRYABLE or FINAL
    shown_to: str  # BUYER or MERCHANT

    @property
    def retryable(self) -> bool:
        return self.kind == RETRYABLE


CATALOGUE: tuple[Decline, ...] = (
    Decline("PAYMENT_FAILED", "The processor declined the payment without a reason.", FINAL, BUYER),
    Decline("CARD_DECLINED", "The card's issuer declined the payment.", FINAL, BUYER),
    Decline("INSUFFICIENT_FUNDS", "The account does not hold enough money.", RETRYABLE, BUYER),
    Decline("EXPIRED_CARD", "The card has expired.", FINAL, BUYER),
    Decline("INCORRECT_CVV", "The card's security code (CVV) is wrong.", RETRYABLE, BUYER),
    Decline(
        "AUTHENTICATION_FAILED",
        "The buyer did not pass the bank's authentication (3-D Secure, UPI PIN).",
        RETRYABLE,
        BUYER,
    ),
    Decline(
        "AUTHENTICATION_TIMEOUT",
        "The buyer did not complete the bank's authentication in time.",
        RETRYABLE,
        BUYER,
    ),
    Decline(
        "PROCESSOR_UNAVAILABLE",
        "The processor or the bank could not be reached; nothing was charged.",
        RETRYABLE,
        BUYER,
    ),
    Decline("INVALID_VPA", "The UPI address (VPA) does not exist.", FINAL, BUYER),
    Decline(
        "LIMIT_EXCEEDED",
        "An amount or count limit of the card, account or processor was reached.",
        RETRYABLE,
        BUYER,
    ),
    Decline("FRAUD_SUSPECTED", "The processor refused the payment as risky.", FINAL, MERCHANT),
    Decline(
        "CAPTURE_FAILED",
        "The processor refused to capture the authorization (expired, already released, or "
        "an amount it does not allow).",
        FINAL,
        MERCHANT,
    ),
    Decline(
        "RELEASE_FAILED",
        "The processor refused to release the authorization (already captured or expired).",
        FINAL,
        MERCHANT,
    ),
    Decline("REFUND_FAILED", "The processor refused the refund without a reason.", FINAL, MERCHANT),
)

BY_CODE: dict[str, Decline] = {decline.code: decline for decline in CATALOGUE}

PAYMENT_FAILED = "PAYMENT_FAILED"
CARD_DECLINED = "CARD_DECLINED"
INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
EXPIRED_CARD = "EXPIRED_CARD"
INCORRECT_CVV = "INCORRECT_CVV"
AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"
AUTHENTICATION_TIMEOUT = "AUTHENTICATION_TIMEOUT"
PROCESSOR_UNAVAILABLE = "PROCESSOR_UNAVAILABLE"
INVALID_VPA = "INVALID_VPA"
LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
FRAUD_SUSPECTED = "FRAUD_SUSPECTED"
CAPTURE_FAILED = "CAPTURE_FAILED"
RELEASE_FAILED = "RELEASE_FAILED"
REFUND_FAILED = "REFUND_FAILED"

HEADER = """# Decline codes

<!-- Generated from paygate/declines.py by `python -m paygate.declines > docs/declines.md`;
tests/test_declines.py fails when the two differ. -->

The `error_code` values Paygate and its processors give when money does not move: on a failed
payment (`error_code`, `error_description`), a failed refund, a refused capture or release
(the error object's `reason`, and the payment's `capture_error_code`), and a refused
tokenization at payment creation (`reason`). `PAYMENT_FAILED` is the contract's code for a
generic decline.

- **retryable**: the same request may succeed later, or after the buyer acts (another
  attempt on the same order is fine); **final**: it will not, the buyer needs another card,
  method or amount.
- **buyer**: the description is safe to show the buyer (the hosted checkout shows it);
  **merchant**: for the merchant's staff and systems only.

Processor plugins should answer refusals with these codes (see
[plugins.md](plugins.md#decline-codes)); a code outside the list reaches the merchant unchanged.

| Code | Meaning | Retry | Shown to |
| --- | --- | --- | --- |
"""


def markdown() -> str:
    """docs/declines.md, from the catalogue."""
    rows = "".join(f"| `{d.code}` | {d.meaning} | {d.kind} | {d.shown_to} |\n" for d in CATALOGUE)
    return HEADER + rows


if __name__ == "__main__":  # pragma: no cover - the docs generator
    print(markdown(), end="")
