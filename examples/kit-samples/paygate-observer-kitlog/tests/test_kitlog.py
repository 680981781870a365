"""kitlog against the kit: the observer contract, then the installed plugin fed by a gateway."""

from contextlib import contextmanager

import pytest
from paygate_observer_kitlog import JsonLinesObserver

from paygate.testing import ObserverContract


class TestKitlogHonoursTheObserverContract(ObserverContract):
    @pytest.fixture(autouse=True)
    def _file(self, tmp_path):
        self.path = tmp_path / "events.jsonl"

    def make_observer(self):
        return JsonLinesObserver(self.path)

    def observed(self, observer):
        return [line["id"] for line in observer.lines()]

    @contextmanager
    def failing_sink(self, observer):
        good = observer.path
        observer.path = good.parent / "no-such-directory" / "events.jsonl"
        try:
            yield
        finally:
            observer.path = good


@pytest.fixture
def log_path(tmp_path, monkeypatch):
    path = tmp_path / "installed.jsonl"
    monkeypatch.setenv("PAYGATE_PLUGIN_KITLOG_PATH", str(path))
    return path


def test_the_installed_observer_gets_every_event_of_two_merchants(log_path, request):
    gateway = request.getfixturevalue("paygate_gateway")  # built after the variable is set
    other = gateway.create_merchant(name="Second shop")
    gateway.paid_payment(1000)
    gateway.paid_payment(2000, merchant=other)
    gateway.run_jobs()
    lines = JsonLinesObserver(log_path).lines()
    assert [line["id"] for line in lines] == [event.id for event in gateway.events()]
    assert {line["merchant_id"] for line in lines} == {gateway.merchant.id, other.id}
