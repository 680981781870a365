"""``PAYGATE_LOG_FORMAT=json``: one JSON object per line, carrying the ids of the request or job
it was logged in (paygate.logcontext), and nothing of a card."""

from __future__ import annotations

import io
import json
import logging

import pytest

from paygate import hookimpl
from paygate.config import TEST_MERCHANT_ID, Settings
from paygate.logcontext import JsonFormatter, bound
from paygate.testing import register_plugin
from tests import factories
from tests.fixtures import AUTH


class ExplodingPolicy:
    """A refund policy whose service is down: the plugin manager logs its traceback."""

    @hookimpl
    def paygate_refund_policy(self, payment, refund_request, refunded_amount):
        raise RuntimeError("policy service down")


@pytest.fixture
def json_lines():
    """What the ``paygate`` loggers write while the test runs, as a JSON handler writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("paygate")
    logger.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)


def test_a_request_logs_its_request_merchant_and_payment_ids_as_json(ctx, api, json_lines):
    payment = factories.paid_payment(ctx, api, vpa="success@test")
    with register_plugin(ctx, ExplodingPolicy(), name="exploding-policy"):
        answer = api.simulate_post(
            f"/api/v1/payments/{payment['id']}/refunds",
            json={"amount": 100, "reason": "4111 1111 1111 1111"},  # never logged
            headers={**AUTH, "Request-Id": "req_json_log_1"},
        )
    assert answer.status_code == 503, answer.text
    logging.getLogger("paygate.test").warning("after the request")

    lines = json_lines()
    (line,) = [x for x in lines if x["logger"] == "paygate.plugins"]
    assert line["level"] == "ERROR"
    assert line["request_id"] == "req_json_log_1"
    assert line["merchant_id"] == TEST_MERCHANT_ID
    assert line["payment_id"] == payment["id"]
    assert "RuntimeError: policy service down" in line["exc_info"]
    assert {"time", "message", "process"} <= set(line)
    # The context ends with the request: a later line carries no ids of it.
    assert "request_id" not in lines[-1] and lines[-1]["message"] == "after the request"
    assert "4111" not in "".join(json.dumps(x) for x in lines)


def test_a_job_logs_its_id_and_the_format_is_a_setting():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("paygate.test.job")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with bound(refund_id="rfnd_abc"):
            logger.warning("asked the processor %s", "test")
        logger.warning("between jobs")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    first, second = (json.loads(x) for x in stream.getvalue().splitlines())
    assert first["refund_id"] == "rfnd_abc" and first["message"] == "asked the processor test"
    assert "refund_id" not in second
    assert Settings.from_env({"PAYGATE_LOG_FORMAT": "JSON"}).log_format == "json"
    assert Settings.from_env({}).log_format == "text"
    with pytest.raises(ValueError, match="PAYGATE_LOG_FORMAT"):
        Settings.from_env({"PAYGATE_LOG_FORMAT": "yaml"})
