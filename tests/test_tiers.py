"""The tiers: tests/conftest.py gives every test one, ``-m unit`` starts no server, and a unit
test that reaches for PostgreSQL or Redis fails and says why (a child pytest on sample tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import tier_to_add

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = """
import pytest

def test_plain():
    pass

def test_uses_servers(paygate_services):
    pass

def test_uses_a_clean_record(clean):
    pass

@pytest.mark.e2e
def test_marked_e2e(clean):
    pass

def test_reaches_postgres():
    import psycopg
    psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres")

def test_reaches_redis():
    import redis
    redis.Redis.from_url("redis://127.0.0.1:6379/0").ping()
"""


def child_pytest(tmp_path, *args: str, source: str = SAMPLE) -> subprocess.CompletedProcess:
    (tmp_path / "test_sample.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider"]
        + ["--rootdir", str(tmp_path), "-c", str(ROOT / "pyproject.toml"), "-q", *args]
        + [str(tmp_path / "test_sample.py")],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("marks", "fixtures", "where", "tier"),
    [
        (set(), set(), "tests/test_x.py", "unit"),
        (set(), {"tmp_path", "receiver"}, "tests/test_x.py", "unit"),
        (set(), {"paygate_services", "clean", "ctx"}, "tests/test_x.py", "integration"),
        ({"e2e"}, {"paygate_services"}, "tests/e2e/test_x.py", None),
        ({"chaos", "e2e"}, {"chaos_servers"}, "tests/chaos/test_x.py", None),
        ({"unit"}, set(), "tests/test_x.py", None),
        (set(), {"paygate_services"}, "tests/browser/test_x.py", "browser"),
        ({"browser"}, set(), "tests/browser/test_x.py", None),
    ],
)
def test_every_test_gets_one_tier(marks, fixtures, where, tier):
    assert tier_to_add(marks, fixtures, ROOT / where) == tier


def test_a_test_marked_unit_that_uses_servers_is_refused():
    with pytest.raises(pytest.UsageError, match="marked unit but uses servers"):
        tier_to_add({"unit"}, {"paygate_services"}, ROOT / "tests/test_x.py")


def test_the_unit_tier_starts_nothing_and_a_unit_test_reaching_a_server_fails(tmp_path):
    run = child_pytest(tmp_path, "-m", "unit")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "2 failed, 1 passed, 3 deselected" in run.stdout  # the servers' three deselected
    assert run.stdout.count("is a unit test but tried to reach PostgreSQL or Redis") >= 2
    assert "paygate services: none started" in run.stdout
