"""kitpay against the kit: the processor contract, then real payments through a gateway."""

from paygate_processor_kitpay import DECLINED_VPA, KitpayProcessor

from paygate.testing import ProcessorContract


class TestKitpayHonoursTheProcessorContract(ProcessorContract):
    def make_processor(self):
        return KitpayProcessor()

    def declining_payment(self, processor):
        return self.make_payment(processor, "upi", vpa=DECLINED_VPA)


def test_the_installed_entry_point_registers_kitpay(paygate_plugins):
    assert paygate_plugins.processor("kitpay").methods == {"upi"}


def test_payments_settle_and_refund_through_a_gateway(paygate_gateway):
    paygate_gateway.use_processor("kitpay")
    paid = paygate_gateway.paid_payment(25000, {"method": "upi", "vpa": "buyer@okaxis"})
    assert paid["status"] == "success"
    declined = paygate_gateway.paid_payment(100, {"method": "upi", "vpa": DECLINED_VPA})
    assert declined["status"] == "failed" and declined["error_code"] == "BAD_REQUEST_ERROR"
    refund = paygate_gateway.refund(paid["id"], 5000)
    assert refund.status_code == 201, refund.text
    paygate_gateway.run_jobs()
    assert paygate_gateway.get_refund(refund.json["id"])["status"] == "processed"
    assert paygate_gateway.payment(paid["id"])["amount_refunded"] == 5000
