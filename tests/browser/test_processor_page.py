"""The dashboard's Processor page in Debian's Chromium against a real dashboard process with an
installed processor that declares per-merchant settings: what is missing, then set, with the
secret never rendered back."""

from __future__ import annotations

import os
import uuid

from playwright.sync_api import expect

from paygate.config import TEST_MERCHANT_ID
from tests.browser.conftest import screenshot
from tests.browser.test_dashboard import sign_in
from tests.plugins.helpers import fake_distribution
from tests.test_processor_configs_cli import VAULTBANK

SECRET = "sk_browser_Distinctive_5150"


def test_processor_page_sets_settings_and_never_shows_the_secret(
    gateway_factory, shared_db, page, tmp_path
):
    site = tmp_path / "site"
    site.mkdir()
    module = f"vaultbank_{uuid.uuid4().hex[:8]}"
    fake_distribution(site, "paygate-vaultbank", "1.0", {"vaultbank": module}, {module: VAULTBANK})
    with shared_db.connection() as conn:
        conn.execute("UPDATE merchants SET processor = 'vault' WHERE id = %s", (TEST_MERCHANT_ID,))
    pythonpath = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    gateway = gateway_factory(PYTHONPATH=pythonpath)
    base = gateway.start_web("dashboard")

    sign_in(page, base)
    page.get_by_role("link", name="Processor").click()
    page.wait_for_url(base + "/dashboard/processor")
    expect(page.get_by_test_id("processor-name")).to_have_text("vault")
    expect(page.get_by_test_id("processor-missing")).to_contain_text("merchant_code, api_key")

    page.get_by_test_id("setting-input-merchant_code").fill("mid_Browser")
    page.get_by_test_id("setting-input-api_key").fill(SECRET)
    page.get_by_test_id("save-processor-settings").click()
    expect(page.get_by_test_id("processor-ready")).to_be_visible()
    expect(page.get_by_test_id("setting-input-merchant_code")).to_have_value("mid_Browser")
    expect(page.get_by_test_id("setting-input-api_key")).to_have_value("")
    expect(page.get_by_test_id("setting-state-api_key")).to_contain_text("Set")
    assert SECRET not in page.content()
    screenshot(page, "dashboard-processor")

    with shared_db.connection() as conn:
        row = conn.execute(
            "SELECT sealed, updated_by FROM processor_configs WHERE merchant_id = %s",
            (TEST_MERCHANT_ID,),
        ).fetchone()
    assert row["updated_by"] == "dashboard:test@example.com"
    assert SECRET not in row["sealed"] and "mid_Browser" not in row["sealed"]
