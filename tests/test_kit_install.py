"""Done-when 5 of issue 17: in a fresh virtual environment, with only
``pip install 'paygate[testing]'``, the tests of three new plugin distributions (a processor, an
observer and a refund policy; examples/kit-samples) run and pass on the kit's fixtures and
contracts alone: an in-process gateway on a real database, no Redis, nothing of Paygate's own
test suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "examples" / "kit-samples"
SAMPLE_NAMES = ("paygate-processor-kitpay", "paygate-observer-kitlog", "paygate-policy-kitlimit")
PAYGATE_SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "paygate", "plugins", "web", "sdk")
IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".*")
# What the test extra brings and the testing extra must not.
NOT_IN_THE_KIT = ("playwright", "schemathesis", "pytest_httpserver", "hypothesis", "ruff")


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def author_env(**extra: str) -> dict[str, str]:
    """A plugin author's shell: none of this run's Python paths or Paygate settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "REDIS_URL")
        and not k.startswith(("PAYGATE_", "PYTEST_"))
    }
    return {**env, **extra}


@pytest.fixture(scope="module")
def kit_venv(tmp_path_factory) -> Path:
    """A fresh venv with ``pip install '<copy of this checkout>[testing]'`` (dependencies from
    the package index, through pip's cache) and the three sample plugins installed."""
    tmp = tmp_path_factory.mktemp("kit")
    src = tmp / "src"
    (src / "paygate").mkdir(parents=True)
    for name in PAYGATE_SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / "paygate" / name, ignore=IGNORE)
        elif path.exists():
            shutil.copy2(path, src / "paygate" / name)
    for name in SAMPLE_NAMES:
        shutil.copytree(SAMPLES / name, src / name, ignore=IGNORE)
    home = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, timeout=120)
    pip = [str(home / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "install"]
    env = author_env()
    run([*pip, "--quiet", f"{src / 'paygate'}[testing]"], tmp, env, timeout=600)
    run([*pip, "--quiet", *[str(src / name) for name in SAMPLE_NAMES]], tmp, env)
    return home


def test_the_testing_extra_brings_pytest_and_the_kit_and_nothing_of_the_test_suite(kit_venv):
    probe = (
        "import importlib.util as u, pytest, paygate.testing as t; "
        "print(pytest.__version__); "
        f"print(sorted(n for n in {NOT_IN_THE_KIT!r} if u.find_spec(n)))"
    )
    out = run([str(kit_venv / "bin" / "python"), "-c", probe], kit_venv, author_env())
    assert out.splitlines()[1] == "[]", out


@pytest.mark.parametrize("sample", SAMPLE_NAMES)
def test_a_new_plugin_distributions_tests_pass_on_the_kit_alone(kit_venv, database_url, sample):
    """The sample's own tests, run by the venv's pytest from the sample's folder: the kit's
    fixtures make a fresh database on this run's PostgreSQL (``DATABASE_URL``); no Redis."""
    folder = kit_venv.parent / "src" / sample
    output = run(
        [str(kit_venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        folder,
        author_env(DATABASE_URL=database_url),
    )
    summary = output.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, output
    tests = "".join(path.read_text() for path in (folder / "tests").glob("test_*.py"))
    assert "paygate_gateway" in tests, "each sample drives a gateway through the kit"


def test_without_database_url_the_kit_starts_an_embedded_postgresql(kit_venv):
    """No DATABASE_URL (a laptop without PostgreSQL): ``paygate_database`` starts the
    embedded server, as ``paygate up`` does, and stops it at the end of the session."""
    folder = kit_venv.parent / "src" / "paygate-policy-kitlimit"
    env = {k: v for k, v in author_env().items() if k != "DATABASE_URL"}
    output = run(
        [str(kit_venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        folder,
        env,
    )
    summary = output.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, output
