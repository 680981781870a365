"""Write access to Redis is not code execution: task messages are JSON data, and a message that
is not one of ours (a pickle above all) is refused, logged, dropped and never run."""

from __future__ import annotations

import json
import logging
import os
import pickle

import pytest
from huey.registry import Message

from paygate.config import Settings
from paygate.jobs.messages import JsonTaskSerializer, RefusedMessage
from paygate.jobs.queue import new_huey
from paygate.jobs.tasks import Tasks
from tests.e2e.helpers import settled
from tests.factories import create_payment
from tests.fixtures import run_queue, wait_for

NAME = "paygate.jobs.tasks.process_payment"


def serializer() -> JsonTaskSerializer:
    return JsonTaskSerializer(known=lambda name: name == NAME)


class TouchOnUnpickle:
    """Unpickling this creates ``path``: the proof that a worker ran what the message said."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.mark.unit
def test_a_task_message_is_plain_json_and_round_trips():
    message = Message("5e1c", NAME, None, 0, 0, None, ("pay_123",), {}, *[None] * 6, 0)
    data = serializer().serialize(message)
    assert json.loads(data) == {"v": 1, "id": "5e1c", "name": NAME, "args": ["pay_123"]}
    assert serializer().deserialize(data) == message


@pytest.mark.unit
def test_a_real_paygate_task_serializes_to_json_and_back():
    huey = new_huey(Settings.from_env({}))
    process_payment = Tasks(huey, context=lambda: None).process_payment
    data = huey.serialize_task(process_payment.s("pay_abc"))
    assert json.loads(data) == {
        "v": 1,
        "id": json.loads(data)["id"],
        "name": NAME,
        "args": ["pay_abc"],
    }
    task = huey.deserialize_task(data)
    assert (type(task), task.args, task.kwargs, task.retries) == (
        type(process_payment.s("x")),
        ("pay_abc",),
        {},
        0,
    )
    with pytest.raises(TypeError, match="string ids only"):
        huey.serialize_task(process_payment.s(123))
    with pytest.raises(TypeError, match="string ids only"):
        huey.serialize_task(process_payment.s("pay_abc").then(process_payment, "pay_def"))


REFUSED = {
    "pickle": (pickle.dumps(TouchOnUnpickle("/nonexistent/x")), "pickle data"),
    "not json": (b"{nope", "not JSON"),
    "not an object": (b'["paygate"]', "not a JSON object"),
    "extra key": (
        json.dumps({"v": 1, "id": "a", "name": NAME, "args": [], "kwargs": {}}).encode(),
        "unexpected or missing keys",
    ),
    "missing key": (json.dumps({"v": 1, "id": "a", "name": NAME}).encode(), "missing keys"),
    "unknown task": (
        json.dumps({"v": 1, "id": "a", "name": "os.system", "args": ["ls"]}).encode(),
        "unknown task name",
    ),
    "non-string args": (
        json.dumps({"v": 1, "id": "a", "name": NAME, "args": [{"x": 1}]}).encode(),
        "args not a list of strings",
    ),
    "other version": (
        json.dumps({"v": 2, "id": "a", "name": NAME, "args": []}).encode(),
        "unknown version",
    ),
    "huge": (b"x" * 10_000, "too long"),
}


@pytest.mark.unit
@pytest.mark.parametrize("case", REFUSED)
def test_a_message_that_is_not_a_paygate_task_is_refused_with_one_safe_warning(case, caplog):
    data, reason = REFUSED[case]
    with caplog.at_level(logging.WARNING, logger="paygate.jobs.messages"):
        with pytest.raises(RefusedMessage, match=reason):
            serializer().deserialize(data)
    [record] = caplog.records
    assert record.levelno == logging.WARNING and reason in record.getMessage()
    assert "os.system" not in record.getMessage() and "touch" not in record.getMessage()


@pytest.mark.e2e
def test_a_pickled_message_on_the_queue_is_not_run_and_the_worker_keeps_settling(
    gateway_factory, tmp_path
):
    """An attacker with Redis write access LPUSHes a pickle whose unpickling touches a file,
    and some bad JSON, onto the queue a real ``paygate worker`` reads: the worker logs the
    refusals, the file never appears, and a payment created afterwards settles."""
    marker = tmp_path / "pwned"
    queue = run_queue()
    conn, key = queue.huey.storage.conn, queue.huey.storage.queue_key
    gateway = gateway_factory(TEST_PROCESSING_DELAY="0")
    gateway.start_api()
    gateway.start_worker()
    gateway.wait_healthy(worker=True)

    conn.lpush(key, pickle.dumps(TouchOnUnpickle(str(marker))), b"{not json")

    def refusals() -> int:
        with open(gateway.logs["worker"], errors="replace") as fh:
            return fh.read().count("refused a queue message")

    wait_for(lambda: refusals() == 2 and conn.llen(key) == 0, timeout=10, message=gateway.tail())
    assert not marker.exists(), "the worker unpickled the message and ran its payload"

    payment = create_payment(gateway, 50000, {"method": "upi", "vpa": "user@paytm"})
    assert settled(gateway, f"/api/v1/payments/{payment['id']}")["status"] == "success"
    assert not marker.exists()
    assert gateway.procs["worker"].poll() is None, "the worker must keep running"
    log = open(gateway.logs["worker"], errors="replace").read()
    assert "touch" not in log and str(marker) not in log and "Traceback" not in log
