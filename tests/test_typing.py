"""The typed plugin API: ``paygate`` ships ``py.typed``, and mypy (strict, configured under
``[tool.mypy]`` in pyproject.toml) passes over ``paygate.types``, ``paygate.hookspecs``,
``paygate.versions`` and ``paygate.testing``, the modules plugin authors type-check against."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.unit


def run_mypy(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_package_ships_py_typed():
    assert (ROOT / "paygate" / "py.typed").is_file()
    assert "py.typed" in (ROOT / "setup.cfg").read_text().split("[options.package_data]")[1]


def test_mypy_is_configured_strict_over_the_plugin_api():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["strict"] is True
    assert {"paygate/types.py", "paygate/hookspecs.py", "paygate/testing"} <= set(config["files"])


def test_mypy_passes_over_the_plugin_api(tmp_path):
    result = run_mypy(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_mypy_would_catch_a_wrongly_typed_plugin_api(tmp_path):
    """The check can fail: a planted annotation error in a checked module is reported."""
    planted = ROOT / "paygate" / "testing" / "_planted_type_error.py"
    planted.write_text("def port() -> int:\n    return 'not a port'\n")
    try:
        result = run_mypy(tmp_path)
    finally:
        planted.unlink()
    assert result.returncode == 1
    assert "_planted_type_error.py:2: error: Incompatible return value type" in result.stdout
