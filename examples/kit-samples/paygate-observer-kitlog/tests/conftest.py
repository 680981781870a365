import os
import tempfile


def pytest_configure(config):
    # The installed kitlog is fed by every gateway the tests start: keep its file out of the
    # working directory (a test that reads it sets its own).
    os.environ.setdefault(
        "PAYGATE_PLUGIN_KITLOG_PATH", os.path.join(tempfile.mkdtemp(), "events.jsonl")
    )
