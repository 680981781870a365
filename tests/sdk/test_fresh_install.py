"""Issue 19, done-when 1: in a fresh virtual environment, ``pip install`` of sdk/python alone
and the tour script of docs/client.md (taken from the doc, so the doc cannot drift) create an
order, pay, wait for success, refund and verify a webhook its own receiver got, against a real
gateway (gunicorn API and Huey worker processes)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from paygate.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- client-tour:"
TOUR_PORT = 4242


def tour_script() -> str:
    """The first ```python block after the client-tour marker of docs/client.md."""
    text = (ROOT / "docs" / "client.md").read_text(encoding="utf-8")
    after = text[text.index(MARKER) :]
    return re.search(r"```python\n(.*?)\n```", after, re.S)[1]


def readme_lines() -> list[str]:
    """The code lines of README.md's "Python client" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Python client") :]
    block = re.search(r"```python\n(.*?)\n```", section, re.S)[1]
    return [line for line in block.splitlines() if line.strip()]


def test_the_readme_shows_lines_of_the_tested_tour():
    """README.md's ten lines are the tour's own (the test below runs the tour); its comment
    lines aside."""
    script = {line.strip() for line in tour_script().splitlines()}
    code = [line.strip() for line in readme_lines() if not line.startswith("#")]
    assert len(readme_lines()) == 10  # the ten lines, one of them a comment
    assert [line for line in code if line not in script] == []


@pytest.mark.e2e
@pytest.mark.slow
def test_a_fresh_venv_with_the_client_alone_runs_the_documented_tour(gateway_factory, tmp_path):
    script = tour_script()
    port = free_port()
    places = (f":{TOUR_PORT}/", f", {TOUR_PORT})")
    for place in places:  # the receiver's port: a free one here, never a fixed port
        assert script.count(place) == 1, place
        script = script.replace(place, place.replace(str(TOUR_PORT), str(port)))
    (tmp_path / "tour.py").write_text(script, encoding="utf-8")

    # The client's sources alone (no repository around them), as a merchant's server has them.
    source = tmp_path / "paygate-client"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
    shutil.copytree(ROOT / "sdk" / "python", source, ignore=ignore)
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    python = str(venv / "bin" / "python")
    pip = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    # Only the client and requests: the gateway is not importable there.
    probe = "import importlib.util as u, paygate_client; print(u.find_spec('paygate'))"
    shown = subprocess.run(
        [python, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert shown.stdout.strip() == "None", shown.stdout + shown.stderr

    gateway = gateway_factory(TEST_PROCESSING_DELAY="300")
    gateway.start_api()
    gateway.start_worker()
    gateway.wait_healthy(worker=True)
    run = subprocess.run(
        [python, str(tmp_path / "tour.py")],
        cwd=tmp_path,
        env={**env, "PAYGATE_API_URL": gateway.url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{gateway.tail()}"
    first, second = run.stdout.splitlines()[:2]
    assert re.fullmatch(r"pay_\w{16} success rfnd_\w{16} processed", first), run.stdout
    # The first delivery to arrive, verified: one of this payment's or its refund's events.
    assert re.match(r"verified webhook: (payment|refund)\.\w+ ", second), run.stdout
    assert first.split()[0] in second
    # The receiver answered 200 only to deliveries it verified: the gateway recorded successes.
    logs = gateway.api_call("GET", "/api/v1/webhooks", params={"limit": 100}).json()["data"]
    assert any(log["status"] == "success" and log["response_code"] == 200 for log in logs)
