"""kitlimit against the kit: the refund policy contract, then a refund through a gateway."""

import paygate_policy_kitlimit
from paygate_policy_kitlimit import REASON

from paygate.testing import RefundCase, RefundPolicyContract


class TestKitlimitHonoursTheRefundPolicyContract(RefundPolicyContract):
    def make_policy(self):
        return paygate_policy_kitlimit

    def allowed_refund(self):
        return RefundCase(amount=10000, refund=2000, refunded_before=3000)

    def denied_refund(self):
        return RefundCase(amount=10000, refund=2500, refunded_before=3000, reason="late")


def test_the_installed_policy_refuses_more_than_half(paygate_gateway):
    paid = paygate_gateway.paid_payment(8000)
    assert paygate_gateway.refund(paid["id"], 4000).status_code == 201
    refused = paygate_gateway.refund(paid["id"], 1)
    assert refused.status_code == 400
    assert refused.json["error"]["description"] == REASON
