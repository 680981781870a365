"""The operator's side of per-merchant processor settings: ``paygate processors configure |
show | clear | reseal``, ``paygate merchants set-processor --set/--set-from-env``, and a plugin
that raises at registration breaking nothing but what needs it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from paygate.config import TEST_MERCHANT_ID
from paygate.services import merchants, processor_configs
from paygate.testing import register_plugin
from tests.plugins.helpers import fake_distribution
from tests.test_processor_configs import Provides, Vaultbank

SECRET = "sk_cli_Distinctive_9931"

VAULTBANK = """
from paygate import ChargeResult, RefundResult, hookimpl
from paygate.types import ProcessorSetting


def _mid(value):
    return None if value.startswith("mid_") else "must start with mid_"


class Vaultbank:
    name = "vault"
    methods = frozenset({"upi"})
    supports_partial_refund = True
    supports_manual_capture = False
    settings = (
        ProcessorSetting("merchant_code", "Your merchant code at the bank", validate=_mid),
        ProcessorSetting("api_key", "API key from the bank's portal", secret=True),
        ProcessorSetting("region", "Data centre", required=False),
    )

    def charge(self, request):
        return ChargeResult.success()

    def sync(self, payment):
        return ChargeResult.success()

    def capture(self, payment, amount):
        return ChargeResult.success()

    def refund(self, payment, refund):
        return RefundResult.processed()


@hookimpl
def paygate_register_processors(register):
    register(Vaultbank())
"""

BROKEN_AT_REGISTRATION = """
from paygate import hookimpl


@hookimpl
def paygate_register_processors(register, settings):
    raise KeyError("ACMEPAY_API_KEY")
"""


@pytest.fixture
def site(tmp_path, clean):
    """A directory of "installed" distributions for the subprocesses: the vault bank."""
    root = tmp_path / "site"
    root.mkdir()
    module = f"vaultbank_{uuid.uuid4().hex[:8]}"
    fake_distribution(root, "paygate-vaultbank", "1.0", {"vaultbank": module}, {module: VAULTBANK})
    return root


def paygate(site, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run(
        [sys.executable, "-m", "paygate", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


def test_configure_show_and_clear(site, ctx):
    configured = paygate(
        site,
        "processors",
        "configure",
        "test@example.com",
        "vault",
        "merchant_code=mid_Cli1",
        "--set-from-env",
        "api_key=VAULT_API_KEY",
        VAULT_API_KEY=SECRET,
    )
    assert configured.returncode == 0, configured.stderr
    assert "api_key = set (secret)" in configured.stdout and SECRET not in configured.stdout
    assert "merchant_code = mid_Cli1" in configured.stdout

    shown = paygate(site, "processors", "show", "test@example.com", "vault")
    assert shown.returncode == 0, shown.stderr
    assert "merchant_code = mid_Cli1  [required]" in shown.stdout
    assert "api_key = set (secret)  [required]" in shown.stdout
    assert "region = not set  [optional]" in shown.stdout
    assert "by cli (sealed under key master)" in shown.stdout
    assert SECRET not in shown.stdout + shown.stderr

    listing = paygate(site, "processors", "show", TEST_MERCHANT_ID, "vault", "--json")
    assert listing.returncode == 0, listing.stderr
    (described,) = json.loads(listing.stdout)
    assert described["missing"] == [] and SECRET not in listing.stdout
    assert {"name": "api_key", "set": True, "secret": True}.items() <= described["settings"][
        1
    ].items()
    assert "value" not in described["settings"][1]

    unset = paygate(
        site, "processors", "configure", "test@example.com", "vault", "--unset", "region"
    )
    assert unset.returncode == 0, unset.stderr
    cleared = paygate(site, "processors", "clear", "test@example.com", "vault")
    assert cleared.returncode == 0 and "removed" in cleared.stdout


@pytest.mark.parametrize(
    "args, status, message",
    [
        (["colour=red"], 1, "Processor 'vault' has no setting 'colour'"),
        (["merchant_code=nope", "api_key=x"], 1, "merchant_code' of processor 'vault': must start"),
        (["merchant_code=mid_1"], 1, "needs these settings for merchant"),
        (["no-equals-sign"], 2, "Expected NAME=VALUE"),
        (["--set-from-env", "api_key=NOT_SET_ANYWHERE_42"], 1, "NOT_SET_ANYWHERE_42"),
    ],
)
def test_configure_refusals_have_exit_codes_and_one_line(site, args, status, message):
    result = paygate(site, "processors", "configure", "test@example.com", "vault", *args)
    assert result.returncode == status, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_configure_an_unknown_processor_or_merchant_is_refused(site):
    result = paygate(site, "processors", "configure", "test@example.com", "nosuch", "a=b")
    assert result.returncode == 1 and "Unknown processor 'nosuch'" in result.stderr
    result = paygate(site, "processors", "show", "nobody@example.com")
    assert result.returncode == 1 and "not found" in result.stderr


def test_set_processor_refuses_missing_required_settings_unless_given(site, ctx):
    refused = paygate(site, "merchants", "set-processor", "test@example.com", "vault")
    assert refused.returncode == 1
    assert "needs these settings for merchant test@example.com: merchant_code, api_key" in (
        refused.stderr
    )
    assert "--set-from-env" in refused.stderr
    merchants.forget_cached()
    assert merchants.get(ctx, TEST_MERCHANT_ID).processor == "test"

    routed = paygate(
        site,
        "merchants",
        "set-processor",
        "test@example.com",
        "vault",
        "--set",
        "merchant_code=mid_Route",
        "--set-from-env",
        "api_key=VAULT_API_KEY",
        VAULT_API_KEY=SECRET,
    )
    assert routed.returncode == 0, routed.stderr
    assert "now routes new payments to vault" in routed.stdout
    assert merchants.get(ctx, TEST_MERCHANT_ID).processor == "vault"


def test_plugins_reports_merchants_whose_processor_lacks_settings(site, ctx):
    with ctx.db.connection() as conn:  # routed by hand, around the CLI's refusal
        conn.execute("UPDATE merchants SET processor = 'vault' WHERE id = %s", (TEST_MERCHANT_ID,))
    listing = paygate(site, "plugins")
    assert listing.returncode == 0, listing.stderr
    assert "setting:      vault.api_key (required, secret) - API key from" in listing.stdout
    assert (
        "merchant test@example.com (" + TEST_MERCHANT_ID + ") on processor vault: missing "
        "required settings: merchant_code, api_key"
    ) in listing.stdout
    as_json = json.loads(paygate(site, "plugins", "--json").stdout)
    (row,) = as_json["merchants_not_ready"]
    assert row["missing"] == ["merchant_code", "api_key"]


def test_a_cli_change_reaches_a_running_process_within_the_cache_bound(site, ctx):
    with register_plugin(ctx, Provides(Vaultbank()), name="vaultbank-here"):
        processor_configs.forget_cached()
        first = paygate(
            site,
            "processors",
            "configure",
            "test@example.com",
            "vault",
            "merchant_code=mid_A",
            "api_key=one",
        )
        assert first.returncode == 0, first.stderr
        assert processor_configs.values_for(ctx, TEST_MERCHANT_ID, "vault")["api_key"] == "one"
        second = paygate(
            site, "processors", "configure", "test@example.com", "vault", "api_key=two"
        )
        assert second.returncode == 0, second.stderr
        changed = time.monotonic()
        while processor_configs.values_for(ctx, TEST_MERCHANT_ID, "vault")["api_key"] != "two":
            assert time.monotonic() - changed < processor_configs.CACHE_SECONDS + 1
            time.sleep(0.1)
    processor_configs.forget_cached()


def key_text() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def test_reseal_rotates_and_names_what_no_key_opens(site):
    a, b = f"a:{key_text()}", f"b:{key_text()}"
    configured = paygate(
        site,
        "processors",
        "configure",
        "test@example.com",
        "vault",
        "merchant_code=mid_R",
        f"api_key={SECRET}",
        PAYGATE_ENCRYPTION_KEYS=a,
    )
    assert configured.returncode == 0, configured.stderr
    rotated = paygate(site, "processors", "reseal", PAYGATE_ENCRYPTION_KEYS=f"{b},{a}")
    assert rotated.returncode == 0, rotated.stderr
    assert "resealed 1 processor configuration(s) under key b; 0 already were; 0 unreadable" in (
        rotated.stdout
    )
    shown = paygate(
        site, "processors", "show", "test@example.com", "vault", PAYGATE_ENCRYPTION_KEYS=b
    )
    assert shown.returncode == 0 and "api_key = set (secret)" in shown.stdout
    assert "sealed under key b" in shown.stdout
    old_only = paygate(site, "processors", "reseal", PAYGATE_ENCRYPTION_KEYS=a)
    assert old_only.returncode == 1
    assert f"unreadable: merchant {TEST_MERCHANT_ID} processor vault (sealed under key b" in (
        old_only.stderr
    )
    shown = paygate(
        site, "processors", "show", "test@example.com", "vault", PAYGATE_ENCRYPTION_KEYS=a
    )
    assert "cannot be decrypted (sealed under key 'b'" in shown.stdout
    bad = paygate(site, "processors", "reseal", PAYGATE_ENCRYPTION_KEYS="a:short")
    assert bad.returncode == 2 and "PAYGATE_ENCRYPTION_KEYS" in bad.stderr


def test_a_plugin_raising_at_registration_breaks_only_what_needs_it(site, clean):
    module = f"acmepay_{uuid.uuid4().hex[:8]}"
    fake_distribution(
        site, "paygate-acmepay", "0.1", {"acmepay": module}, {module: BROKEN_AT_REGISTRATION}
    )

    migrated = paygate(site, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    listed = paygate(site, "merchants", "list")
    assert listed.returncode == 0, listed.stderr
    assert "test@example.com" in listed.stdout
    shown = paygate(site, "processors", "show", "test@example.com")
    assert shown.returncode == 0, shown.stderr  # the vault bank still loads

    plugins = paygate(site, "plugins")
    assert plugins.returncode == 1
    assert "FAILED acmepay: plugin 'acmepay' failed in paygate_register_processors" in (
        plugins.stdout
    )
    assert "KeyError: 'ACMEPAY_API_KEY'" in plugins.stderr
    assert "processor vault" in plugins.stdout and "processor test" in plugins.stdout
    as_json = paygate(site, "plugins", "--json")
    assert as_json.returncode == 1
    (failed,) = json.loads(as_json.stdout)["failed"]
    assert failed["name"] == "acmepay" and "ACMEPAY_API_KEY" in failed["error"]

    routed = paygate(site, "merchants", "set-processor", "test@example.com", "acmepay")
    assert routed.returncode == 1 and "Unknown processor 'acmepay'" in routed.stderr

    served = paygate(site, "api", "--port", "1")
    assert served.returncode == 1 and "Traceback" not in served.stderr
    (line,) = [ln for ln in served.stderr.splitlines() if ln.startswith("paygate:")]
    assert "'acmepay' failed in paygate_register_processors" in line
