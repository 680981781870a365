"""``paygate.runfile``: how commands find the running ``paygate up`` of their state directory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from paygate import runfile

pytestmark = pytest.mark.unit

ENV = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:6543/paygate", "REDIS_URL": "redis://x:1"}


def test_a_command_takes_the_urls_of_the_running_up_it_lacks(tmp_path):
    written = runfile.write(tmp_path, {**ENV, "OTHER": "not shared"})
    assert written.stat().st_mode & 0o777 == 0o600
    assert runfile.environment(tmp_path, {}) == ENV
    assert runfile.environment(tmp_path, {"REDIS_URL": "redis://mine"}) == {
        "DATABASE_URL": ENV["DATABASE_URL"]
    }


def test_a_command_given_a_database_keeps_it_and_takes_nothing(tmp_path):
    runfile.write(tmp_path, ENV)
    assert runfile.environment(tmp_path, {"DATABASE_URL": "postgresql://elsewhere/db"}) == {}


def test_nothing_is_found_without_a_file_or_when_its_process_is_gone(tmp_path):
    assert runfile.environment(tmp_path, {}) == {}
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    runfile.path(tmp_path).write_text(f'{{"pid": {gone.pid}, "DATABASE_URL": "postgresql://x"}}')
    assert runfile.running(tmp_path) is None  # a kill -9 left it behind: stale, ignored
    runfile.path(tmp_path).write_text("not json")
    assert runfile.running(tmp_path) is None


def test_remove_forgets_only_its_own_record(tmp_path):
    runfile.path(tmp_path).write_text(f'{{"pid": {os.getppid()}}}')  # another live process's
    runfile.remove(tmp_path)
    assert runfile.path(tmp_path).exists()
    runfile.write(tmp_path, ENV)
    runfile.remove(tmp_path)
    assert not runfile.path(tmp_path).exists()
