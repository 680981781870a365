"""The JSON Lines observer: one durable line per event, a failing sink raises (so the gateway
retries), and the entry point registers it from ``PAYGATE_PLUGIN_JSONL_PATH``.

Run after ``pip install paygate-observer-jsonl`` (or ``pip install -e .``): the entry-point test
checks what the gateway itself would load. The end-to-end test with a real worker is Paygate's
tests/e2e/test_observer_flow.py.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import paygate_observer_jsonl
import pytest
from paygate_observer_jsonl import JsonlObserver, line_of

from paygate import Event
from paygate.config import Settings
from paygate.plugins import load_plugins


def event(n: int, merchant: str = "m-1") -> Event:
    body = {"event": "payment.success", "timestamp": 1700000000 + n, "data": {"amount": 500 + n}}
    return Event(
        id=f"00000000-0000-0000-0000-{n:012d}",
        type="payment.success",
        merchant_id=merchant,
        resource_id=f"pay_{n}",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        data=body["data"],
        body=json.dumps(body, separators=(",", ":")).encode(),
        sequence=n,
    )


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_event_is_one_json_line_carrying_the_webhook_envelope(tmp_path):
    path = tmp_path / "events.jsonl"
    observer = JsonlObserver(str(path))
    observer.observe(event(1))
    observer.observe(event(2, merchant="m-2"))
    assert [(r["id"], r["sequence"], r["merchant_id"]) for r in lines(path)] == [
        ("00000000-0000-0000-0000-000000000001", 1, "m-1"),
        ("00000000-0000-0000-0000-000000000002", 2, "m-2"),
    ]
    first = lines(path)[0]
    assert first["event"] == json.loads(event(1).body)
    assert (first["type"], first["resource_id"]) == ("payment.success", "pay_1")
    assert first["created_at"] == "2026-01-01T00:00:00+00:00"
    assert line_of(event(1)).endswith(b"\n") and line_of(event(1)).count(b"\n") == 1


def test_a_repeat_is_appended_again_for_readers_to_drop_by_id(tmp_path):
    path = tmp_path / "events.jsonl"
    observer = JsonlObserver(str(path), fsync=False)
    observer.observe(event(1))
    observer.observe(event(1))  # at least once: the gateway may hand an event over twice
    assert [r["id"] for r in lines(path)] == [event(1).id] * 2


def test_a_sink_that_is_gone_raises_and_works_again_once_it_is_back(tmp_path):
    sink = tmp_path / "sink"
    sink.mkdir()
    observer = JsonlObserver(str(sink / "events.jsonl"))
    observer.observe(event(1))
    sink.rename(tmp_path / "away")
    with pytest.raises(FileNotFoundError):
        observer.observe(event(2))
    (tmp_path / "away").rename(sink)
    observer.observe(event(2))
    assert [r["sequence"] for r in lines(sink / "events.jsonl")] == [1, 2]


def test_the_installed_entry_point_registers_the_observer_from_its_configuration(tmp_path):
    path = tmp_path / "events.jsonl"
    settings = Settings.from_env(
        TEST_MODE="true", PAYGATE_PLUGIN_JSONL_PATH=str(path), PAYGATE_PLUGIN_JSONL_FSYNC="false"
    )
    plugins = load_plugins(settings)
    observer = plugins.observers["jsonl"]
    assert (observer.path, observer.fsync) == (str(path), False)
    (row,) = [row for row in plugins.info() if row.name == "jsonl"]
    assert row.distribution == "paygate-observer-jsonl"
    assert row.version == paygate_observer_jsonl.__version__
    assert row.kind == "observer"


def test_without_a_path_nothing_is_registered_and_the_gateway_still_loads(monkeypatch, caplog):
    monkeypatch.delenv("PAYGATE_PLUGIN_JSONL_PATH", raising=False)
    caplog.set_level(logging.DEBUG, logger="paygate.plugin.jsonl")
    plugins = load_plugins(Settings.from_env(TEST_MODE="true"))
    assert "jsonl" not in plugins.observers
    assert not plugins.failures
    # Quiet: every process and command loads plugins, so only a DEBUG line says why.
    ours = [r for r in caplog.records if r.name == "paygate.plugin.jsonl"]
    assert [r.levelno for r in ours] == [logging.DEBUG]
    assert "PAYGATE_PLUGIN_JSONL_PATH is not set" in ours[0].getMessage()


def test_with_a_path_it_logs_nothing(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="paygate.plugin.jsonl")
    settings = Settings.from_env(TEST_MODE="true", PAYGATE_PLUGIN_JSONL_PATH=str(tmp_path / "e"))
    assert "jsonl" in load_plugins(settings).observers
    assert [r for r in caplog.records if r.name == "paygate.plugin.jsonl"] == []
