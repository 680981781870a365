"""Done-when 1: in a fresh virtual environment, ``pip install`` of the example distribution
makes ``paygate plugins`` list it, and a payment routed to it settles end to end through a real
API and a real worker started from that environment."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import create_order, create_payment
from tests.fixtures import TEST_ENV, Gateway, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
UPI_OKAXIS = {"method": "upi", "vpa": "buyer@okaxis"}

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "paygate-processor-slowbank"
SETTLE_SECONDS = "2.5"  # longer than the worker's inline wait: the janitor brings it back
PAYGATE_SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "paygate", "plugins", "web", "sdk")
IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".*")


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv (this environment's site-packages for the dependencies) with Paygate and
    the example pip-installed into it from copies of their sources (in ``<venv>/../src``), as a
    user would install them. The venv's own Python and ``paygate`` script are what the tests run."""
    tmp_path = tmp_path_factory.mktemp("example")
    src = tmp_path / "src"
    (src / "paygate").mkdir(parents=True)
    for name in PAYGATE_SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / "paygate" / name, ignore=IGNORE)
        elif path.exists():
            shutil.copy2(path, src / "paygate" / name)
    shutil.copytree(EXAMPLE, src / "slowbank", ignore=IGNORE)
    home = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True)
    # The dependencies come from the environment running these tests, which may itself be a
    # virtual environment (``--system-site-packages`` would only reach the base interpreter's).
    # Its site directories go after the new venv's own, so the venv's copies of Paygate and
    # the example win over any installed here.
    (venv_site,) = (home / "lib").glob("python3*/site-packages")
    outer = [path for path in site.getsitepackages() if Path(path).is_dir()]
    lines = "".join(f"import site; site.addsitedir({path!r})\n" for path in outer)
    (venv_site / "zz_outer_environment.pth").write_text(lines)
    env = clean_env()
    # Build with this environment's setuptools and wheel when it has them (fast, offline);
    # otherwise pip fetches them into an isolated build environment.
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("wheel") else []
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(home / "bin" / "python"),
            "install",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            *isolation,
            str(src / "paygate"),
            str(src / "slowbank"),
        ],
        cwd=tmp_path,
        env=env,
        timeout=180,
    )
    return home


def test_the_example_passes_its_own_tests_against_the_installed_paygate_testing(venv):
    """What a plugin author runs: the example's tests (the contract kit, the fixtures of the
    ``pytest11`` entry point, the installed entry point) inside the fresh environment."""
    example = venv.parent / "src" / "slowbank"
    output = run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        example,
        clean_env(),
    )
    assert " passed" in output and "failed" not in output and "error" not in output, output


def test_the_example_installs_lists_and_settles_payments_with_a_worker(ctx, venv, tmp_path):
    python = str(venv / "bin" / "python")
    env = {
        **clean_env(),
        **TEST_ENV,
        "PAYGATE_JANITOR_INTERVAL": "0.2",
        "PAYGATE_LOG_LEVEL": "INFO",
        "SLOWBANK_SETTLE_SECONDS": SETTLE_SECONDS,
    }
    where = run(
        [
            python,
            "-c",
            "import paygate, paygate_processor_slowbank as s; "
            "print(paygate.__file__); print(s.__file__)",
        ],
        cwd=tmp_path,
        env=env,
    )
    assert all(line.startswith(str(venv)) for line in where.split()), where  # the venv's copies

    listing = json.loads(run([str(venv / "bin" / "paygate"), "plugins", "--json"], tmp_path, env))
    (row,) = [row for row in listing["data"] if row["name"] == "slowbank"]
    assert (row["kind"], row["distribution"], row["version"]) == (
        "processor",
        "paygate-processor-slowbank",
        "0.1.0",
    )
    assert row["processors"] == ["slowbank"] and row["hooks"] == ["paygate_register_processors"]

    routed = run(
        [
            str(venv / "bin" / "paygate"),
            "merchants",
            "set-processor",
            "test@example.com",
            "slowbank",
        ],
        tmp_path,
        env,
    )
    assert "now routes new payments to slowbank" in routed

    # every process runs the virtual environment's Python
    gateway = Gateway(env=env, tmp=str(tmp_path), python=python, cwd=str(tmp_path))
    try:
        gateway.start_api()
        gateway.start_worker()
        gateway.wait_healthy(worker=True)
        ids = {}
        for amount in (50000, 50013):  # Slowbank declines amounts ending in 13 paise
            order = create_order(gateway, amount)
            created = create_payment(gateway, order_id=order["id"], method=UPI_OKAXIS)
            assert created["status"] == "pending"
            ids[amount] = created["id"]
        card = gateway.api_call(
            "POST",
            "/api/v1/payments",
            json={
                "order_id": order["id"],
                "method": "card",
                "card": {
                    "number": "4111111111111111",
                    "expiry_month": "12",
                    "expiry_year": "99",
                    "cvv": "123",
                },
            },
        )
        assert card.status_code == 400
        assert card.json()["error"]["description"] == "Payment method card is not supported"

        def settled(payment_id: str) -> dict | None:
            shown = gateway.api_call("GET", f"/api/v1/payments/{payment_id}").json()
            return shown if shown["status"] != "pending" else None

        paid = wait_for(lambda: settled(ids[50000]), timeout=30)
        declined = wait_for(lambda: settled(ids[50013]), timeout=30)
        assert paid["status"] == "success"
        assert (declined["status"], declined["error_code"]) == ("failed", "PAYMENT_FAILED")
        assert declined["error_description"] == "Declined by Slowbank: insufficient funds"

        with ctx.db.connection() as conn:
            rows = conn.execute(
                "SELECT id, processor, processor_reference, charge_acknowledged, "
                "extract(epoch FROM settled_at - created_at) AS took FROM payments "
                "WHERE id = ANY(%s)",
                (list(ids.values()),),
            ).fetchall()
        for stored in rows:
            assert stored["processor"] == "slowbank"
            assert stored["processor_reference"].startswith("slowbank_pay_")
            assert stored["charge_acknowledged"]  # charged once, then settled by sync
            assert stored["took"] >= float(SETTLE_SECONDS)  # nobody guessed before the bank knew

        # Slowbank refunds only in full; a full refund is processed by the worker too.
        refunds = f"/api/v1/payments/{ids[50000]}/refunds"
        partial = gateway.api_call("POST", refunds, json={"amount": 100})
        assert partial.status_code == 400
        assert partial.json()["error"]["description"] == (
            "Processor 'slowbank' supports full refunds only"
        )
        refund = gateway.api_call("POST", refunds, json={"amount": 50000})
        assert refund.status_code == 201, refund.text
        processed = wait_for(
            lambda: (
                (r := gateway.api_call("GET", f"/api/v1/refunds/{refund.json()['id']}").json())[
                    "status"
                ]
                == "processed"
                and r
            ),
            timeout=30,
        )
        assert processed["processed_at"]
    finally:
        gateway.stop_all()


def test_paygate_installs_under_its_own_name_only(venv):
    """``pip install .`` puts the repository's plugins/, web/ and sdk/ under ``paygate``
    (setup.cfg's package_dir): nothing of ours takes the top-level names ``plugins``, ``web``
    or ``sdk`` in a site-packages, and the installed copies hold the pages and the SDK."""
    (site_packages,) = (venv / "lib").glob("python3*/site-packages")
    ours = {"plugins", "web", "sdk", "builtin"}
    assert not ours & {path.name for path in site_packages.iterdir()}
    installed = site_packages / "paygate"
    assert (installed / "builtin" / "processors" / "testmode.py").is_file()
    assert (installed / "web" / "dashboard" / "templates").is_dir()
    assert (installed / "web" / "checkout" / "static").is_dir()
    assert (installed / "sdk" / "checkout.js").read_bytes() == (
        ROOT / "sdk" / "checkout.js"
    ).read_bytes()
    assert (installed / "api" / "app.py").is_file() and (installed / "db" / "migrations").is_dir()
    # The Python client the CLI uses (its own distribution too, docs/client.md).
    assert (site_packages / "paygate_client" / "py.typed").is_file()
    shown = run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import paygate.web.dashboard.app, paygate.web.checkout.app as c, paygate.api.app; "
            "print(c.read_sdk()[:40]); print(c.__file__)",
        ],
        venv.parent,
        clean_env(),
    )
    assert str(installed) in shown


def test_setup_cfg_lists_every_package_of_the_tree():
    """setup.cfg names its packages one by one (package_dir renames three folders, which
    ``find:`` cannot): a new package folder that is not listed would be missing from the wheel."""
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    folders = {
        "paygate": "paygate",
        "plugins": "paygate.builtin",
        "web": "paygate.web",
        # the Python client (its own distribution too); sdk/python itself is no package
        "sdk/python/paygate_client": "paygate_client",
    }
    found = {"paygate.sdk"}
    for folder, name in folders.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join([name, *parts]))
    assert listed == found
