"""kitpay: a tiny processor that settles UPI payments at once (``decline@kitpay`` is refused)."""

from __future__ import annotations

from paygate import ChargeResult, RefundResult, hookimpl

__version__ = "0.1.0"
DECLINED_VPA = "decline@kitpay"


class KitpayProcessor:
    name = "kitpay"
    methods = frozenset({"upi"})
    supports_partial_refund = True
    supports_manual_capture = False

    def charge(self, request):
        return self.sync(request.payment)

    def sync(self, payment):
        if payment.vpa == DECLINED_VPA:
            return ChargeResult.failed("BAD_REQUEST_ERROR", "The bank declined this UPI address")
        return ChargeResult.success(reference="kp_" + payment.id)

    def capture(self, payment, amount):
        return ChargeResult.success(reference="kp_" + payment.id)

    def refund(self, payment, refund):
        return RefundResult.processed(reference="kpr_" + refund.id)


@hookimpl
def paygate_register_processors(register):
    register(KitpayProcessor())
