"""What the worker keeps of Huey's logging at INFO: its warnings and stop lines, not the per-task
lines, its start banner (Paygate's own start lines say the same) or the list of task names."""

import logging

import pytest

from paygate.jobs.worker import quiet_task_logs


@pytest.fixture
def restored():
    names = ("", "huey", "huey.consumer")
    saved = {n: (logging.getLogger(n).level, list(logging.getLogger(n).filters)) for n in names}
    yield
    for name, (level, filters) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.filters[:] = filters


def record(name: str, msg: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, None, None)


def test_info_keeps_the_consumer_stop_but_not_its_banner_or_task_list(restored):
    logging.getLogger().setLevel(logging.INFO)
    quiet_task_logs()
    consumer = logging.getLogger("huey.consumer")
    assert consumer.isEnabledFor(logging.INFO)
    assert consumer.filter(record("huey.consumer", "Shutting down gracefully..."))
    assert consumer.filter(record("huey.consumer", "Unhandled exception in worker thread"))
    for banner in (
        "Huey consumer started with %s %s, PID %s at %s",
        "Scheduler runs every %s second(s).",
        "Periodic tasks are %s.",
    ):
        assert not consumer.filter(record("huey.consumer", banner))
    listing = "The following commands are available:\n+ paygate.jobs.tasks.process_payment"
    assert not consumer.filter(record("huey.consumer", listing))
    assert not logging.getLogger("huey").isEnabledFor(logging.INFO)


def test_debug_keeps_everything(restored):
    logging.getLogger().setLevel(logging.DEBUG)
    logging.getLogger("huey.consumer").filters.clear()
    quiet_task_logs()
    listing = "The following commands are available:\n+ paygate.jobs.tasks.process_payment"
    assert logging.getLogger("huey.consumer").filter(record("huey.consumer", listing))


def test_the_janitors_counts_read_as_words():
    from paygate.jobs.janitor import describe

    counts = {"payments": 2, "refunds": 0, "payment_operations": 1, "webhook_logs": 3}
    assert describe(counts) == ("2 payments, 0 refunds, 1 captures/releases, 3 webhook deliveries")
