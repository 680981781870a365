"""Per-merchant processor settings (issue 16): declared by the processor, validated when set,
sealed at rest with keys outside the database (rotation), handed to operations, refused when
missing or unreadable, and set by merchant staff in the dashboard (secrets write-only)."""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass, field

import pytest

from paygate import ChargeResult, RefundResult, hookimpl
from paygate.config import TEST_MERCHANT_ID
from paygate.errors import (
    BadRequest,
    PluginError,
    ProcessorConfigUnreadable,
    ProcessorNotConfigured,
)
from paygate.plugins import load_plugins
from paygate.services import merchants, processor_configs
from paygate.testing import register_plugin
from paygate.types import ProcessorSetting
from paygate.web.dashboard.app import create_app
from tests.dashboard_client import DashboardClient, by_test_id
from tests.factories import create_order, post_payment
from tests.fixtures import OTHER_MERCHANT_ID, make_settings

SECRET = "sk_live_Zq81distinctive_secret_value"
MID = "mid_Distinctive4242"


def _mid(value: str) -> str | None:
    return None if value.startswith("mid_") else "must start with mid_"


VAULT_SETTINGS = (
    ProcessorSetting("merchant_code", "Your merchant code at the bank", validate=_mid),
    ProcessorSetting("api_key", "API key from the bank's portal", secret=True),
    ProcessorSetting("region", "Data centre", required=False),
)


@dataclass
class Vaultbank:
    name: str = "vault"
    methods: frozenset[str] = frozenset({"upi"})
    supports_partial_refund: bool = True
    supports_manual_capture: bool = False
    settings: tuple = VAULT_SETTINGS
    seen: list = field(default_factory=list)

    def charge(self, request):
        self.seen.append(dict(request.config))
        return ChargeResult.success(reference="v_1")

    def sync(self, payment, config=None):
        return ChargeResult.success(reference="v_1")

    def capture(self, payment, amount, config=None):
        return ChargeResult.success()

    def refund(self, payment, refund, config=None):
        return RefundResult.processed()


class Provides:
    def __init__(self, *processors):
        self.processors = processors

    @hookimpl
    def paygate_register_processors(self, register):
        for processor in self.processors:
            register(processor)


def key_text() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


@pytest.fixture
def vault(ctx):
    bank = Vaultbank()
    with register_plugin(ctx, Provides(bank), name="vaultbank"):
        processor_configs.forget_cached()
        yield bank
    processor_configs.forget_cached()


def with_keys(ctx, keys: str):
    """The same record and plugins, another PAYGATE_ENCRYPTION_KEYS (another process)."""
    from dataclasses import replace

    return replace(ctx, settings=make_settings(PAYGATE_ENCRYPTION_KEYS=keys))


# -- declaration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, problem",
    [
        ((ProcessorSetting("Api_Key"),), "must match"),
        ((ProcessorSetting("key"), ProcessorSetting("key")), "declared twice"),
        (("key",), "ProcessorSetting objects"),
        ([ProcessorSetting("ok", validate="no")], "validate must be a function"),
    ],
)
def test_a_malformed_settings_declaration_is_refused_at_registration(settings, problem):
    plugins = load_plugins(make_settings(), entry_points=False)
    with pytest.raises(PluginError, match=problem) as caught:
        with register_plugin(plugins, Provides(Vaultbank(settings=settings)), name="badvault"):
            pass
    assert "'badvault'" in str(caught.value) and "'vault'" in str(caught.value)


def test_the_catalogue_lists_settings_without_values(ctx, vault):
    processor_configs.set_values(
        ctx, TEST_MERCHANT_ID, "vault", {"merchant_code": MID, "api_key": SECRET}, actor="t"
    )
    (row,) = [p for p in ctx.plugins.catalog()["processors"] if p["name"] == "vault"]
    assert row["settings"] == [
        {
            "name": "merchant_code",
            "required": True,
            "secret": False,
            "description": "Your merchant code at the bank",
        },
        {
            "name": "api_key",
            "required": True,
            "secret": True,
            "description": "API key from the bank's portal",
        },
        {"name": "region", "required": False, "secret": False, "description": "Data centre"},
    ]
    assert SECRET not in repr(ctx.plugins.catalog()) and MID not in repr(ctx.plugins.catalog())
    (test,) = [p for p in ctx.plugins.catalog()["processors"] if p["name"] == "test"]
    assert test["settings"] == []


def test_a_registration_hook_that_raises_is_reported_when_tolerant_and_fatal_otherwise():
    class Exploding:
        @hookimpl
        def paygate_register_processors(self, register):
            register(Vaultbank(name="half"))
            raise RuntimeError("BANK_API_KEY is not set")

    plugins = load_plugins(make_settings(), entry_points=False, extra=[Exploding()], tolerant=True)
    (failure,) = plugins.failures
    assert failure.name == "Exploding" and "BANK_API_KEY is not set" in failure.error
    assert "half" not in plugins.processors and "test" in plugins.processors
    assert plugins.catalog()["failed"] == [
        {"name": "Exploding", "error": failure.error},
    ]
    with pytest.raises(PluginError, match="BANK_API_KEY is not set"):
        load_plugins(make_settings(), entry_points=False, extra=[Exploding()])


# -- setting and validation -----------------------------------------------------------------------


def test_values_are_validated_against_the_declaration_and_nothing_changes_on_refusal(ctx, vault):
    def refused(values, match, **kwargs):
        with pytest.raises(BadRequest, match=match):
            processor_configs.set_values(
                ctx, TEST_MERCHANT_ID, "vault", values, actor="t", **kwargs
            )

    refused({"merchant_code": MID, "api_key": SECRET, "colour": "red"}, "has no setting 'colour'")
    refused({"merchant_code": "nope", "api_key": SECRET}, "merchant_code.*must start with mid_")
    refused({"merchant_code": MID}, "needs these settings .*: api_key")
    refused({"merchant_code": MID, "api_key": "x" * 5000}, "at most 4096 characters")
    refused({"merchant_code": MID, "api_key": 42}, "must be text")
    assert processor_configs.describe(ctx, TEST_MERCHANT_ID, "vault").updated_at is None

    processor_configs.set_values(
        ctx, TEST_MERCHANT_ID, "vault", {"merchant_code": MID, "api_key": SECRET}, actor="cli"
    )
    refused({}, "needs these settings .*: api_key", unset=["api_key"])  # required stays
    described = processor_configs.set_values(
        ctx, TEST_MERCHANT_ID, "vault", {"region": "mumbai"}, actor="dashboard:x"
    )
    states = {s.name: s for s in described.settings}
    assert states["merchant_code"].value == MID and states["region"].value == "mumbai"
    assert states["api_key"].is_set and states["api_key"].value is None  # masked
    assert "value" not in states["api_key"].as_dict() and SECRET not in repr(described)
    assert described.ready and described.updated_by == "dashboard:x"
    assert described.key_id == "master"
    assert dict(processor_configs.values_for(ctx, TEST_MERCHANT_ID, "vault")) == {
        "merchant_code": MID,
        "api_key": SECRET,
        "region": "mumbai",
    }
    processor_configs.set_values(ctx, TEST_MERCHANT_ID, "vault", {"region": ""}, actor="t")
    assert "region" not in processor_configs.values_for(ctx, TEST_MERCHANT_ID, "vault")


def test_values_are_per_merchant(ctx, vault, other_merchant):
    processor_configs.set_values(
        ctx, TEST_MERCHANT_ID, "vault", {"merchant_code": MID, "api_key": SECRET}, actor="t"
    )
    with pytest.raises(ProcessorNotConfigured, match="merchant_code, api_key"):
        processor_configs.values_for(ctx, OTHER_MERCHANT_ID, "vault")
    assert processor_configs.values_for(ctx, OTHER_MERCHANT_ID, "test") == {}


# -- at rest --------------------------------------------------------------------------------------


def every_text_value(ctx) -> list[tuple[str, str, str]]:
    """(table, column, value) of every text-like column of every table in the schema."""
    found = []
    with ctx.db.connection() as conn:
        columns = conn.execute(
            """SELECT table_name, column_name FROM information_schema.columns
                WHERE table_schema = current_schema()
                  AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb',
                                    'bytea')"""
        ).fetchall()
        for row in columns:
            table, column = row["table_name"], row["column_name"]
            for value in conn.execute(f'SELECT "{column}"::text AS v FROM "{table}"').fetchall():
                if value["v"] is not None:
                    found.append((table, column, value["v"]))
    return found


def test_no_value_rests_in_plaintext_anywhere_in_the_database(ctx, vault):
    processor_configs.set_values(
        ctx, TEST_MERCHANT_ID, "vault", {"merchant_code": MID, "api_key": SECRET}, actor="t"
    )
    values = every_text_value(ctx)
    assert any(table == "processor_configs" for table, _, _ in values)
    for table, column, value in values:
        for needle in (SECRET, MID, "Zq81distinctive", base64.b64encode(SECRET.encode()).decode()):
            assert needle not in value, f"{needle!r} in {table}.{column}"


def test_a_sealed_document_moved_to_another_merchant_is_refused_never_used(
    ctx, vault, other_merchant
):
    processor_configs.set_values(
        ctx, TEST_MERCHANT_ID, "vault", {"merchant_code": MID, "api_key": SECRET}, actor="t"
    )
    with ctx.db.connection() as conn:
        conn.execute(
            """INSERT INTO processor_configs (merchant_id, processor, sealed, key_id, updated_by)
               SELECT %s, processor, sealed, key_id, 'copy' FROM processor_configs""",
            (OTHER_MERCHANT_ID,),
        )
    with pytest.raises(ProcessorConfigUnreadable, match="cannot be decrypted") as caught:
        processor_configs.values_for(ctx, OTHER_MERCHANT_ID, "vault")
    assert caught.value.status == 500
    described = processor_configs.describe(ctx, OTHER_MERCHANT_ID, "vault")
    assert described.error and not described.ready
    assert processor_configs.clear(ctx, OTHER_MERCHANT_ID, "vault", actor="t")  # the way out


def test_rotation_add_a_key_in_front_reseal_then_drop_the_old_one(ctx, vault):
    a, b = key_text(), key_text()
    under_a = with_keys(ctx, f"a:{a}")
    processor_configs.set_values(
        under_a, TEST_MERCHANT_ID, "vault", {"merchant_code": MID, "api_key": SECRET}, actor="t"
    )
    assert processor_configs.describe(under_a, TEST_MERCHANT_ID, "vault").key_id == "a"
    with pytest.raises(ProcessorConfigUnreadable, match="key 'a'"):  # master alone: refused
        processor_configs.values_for(ctx, TEST_MERCHANT_ID, "vault")

    both = with_keys(ctx, f"b:{b},a:{a}")
    processor_configs.forget_cached()
    assert processor_configs.values_for(both, TEST_MERCHANT_ID, "vault")["api_key"] == SECRET
    report = processor_configs.reseal(both)
    assert (report.resealed, report.current, report.unreadable) == (1, 0, ())
    assert processor_configs.reseal(both).current == 1  # idempotent
    assert processor_configs.describe(both, TEST_MERCHANT_ID, "vault").key_id == "b"

    only_b = with_keys(ctx, f"b:{b}")
    assert processor_configs.values_for(only_b, TEST_MERCHANT_ID, "vault")["api_key"] == SECRET
    only_a = with_keys(ctx, f"a:{a}")
    processor_configs.forget_cached()
    with pytest.raises(ProcessorConfigUnreadable, match="key 'b'"):
        processor_configs.values_for(only_a, TEST_MERCHANT_ID, "vault")
    assert processor_configs.reseal(only_a).unreadable == ((TEST_MERCHANT_ID, "vault", "b"),)


def test_the_master_key_can_stay_listed_while_moving_away_from_it(ctx, vault):
    processor_configs.set_values(
        ctx, TEST_MERCHANT_ID, "vault", {"merchant_code": MID, "api_key": SECRET}, actor="t"
    )
    moving = with_keys(ctx, f"k1:{key_text()},master")
    assert processor_configs.reseal(moving).resealed == 1
    assert processor_configs.values_for(moving, TEST_MERCHANT_ID, "vault")["api_key"] == SECRET


def test_a_change_made_elsewhere_is_seen_within_the_cache_bound(ctx, vault):
    processor_configs.set_values(
        ctx, TEST_MERCHANT_ID, "vault", {"merchant_code": MID, "api_key": SECRET}, actor="t"
    )
    assert processor_configs.values_for(ctx, TEST_MERCHANT_ID, "vault")["api_key"] == SECRET
    # Another process writes (its own sealing; this process's cache is not told).
    sealed, key_id = processor_configs._seal(
        ctx, TEST_MERCHANT_ID, "vault", {"merchant_code": MID, "api_key": "sk_rotated"}
    )
    with ctx.db.connection() as conn:
        conn.execute("UPDATE processor_configs SET sealed = %s, key_id = %s", (sealed, key_id))
    started = time.monotonic()
    while processor_configs.values_for(ctx, TEST_MERCHANT_ID, "vault")["api_key"] != "sk_rotated":
        assert time.monotonic() - started < processor_configs.CACHE_SECONDS + 1
        time.sleep(0.1)


# -- payments -------------------------------------------------------------------------------------


def test_payment_creation_is_refused_with_400_until_required_settings_are_set(ctx, api, vault):
    merchants.set_processor(ctx, TEST_MERCHANT_ID, "vault")
    order = create_order(api)
    answer = post_payment(api, order["id"])
    assert answer.status_code == 400, answer.text
    error = answer.json["error"]
    assert error["code"] == "BAD_REQUEST_ERROR"
    assert "missing required settings (merchant_code, api_key)" in error["description"]
    with ctx.db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM payments").fetchone()["n"] == 0

    processor_configs.set_values(
        ctx, TEST_MERCHANT_ID, "vault", {"merchant_code": MID, "api_key": SECRET}, actor="t"
    )
    answer = post_payment(api, order["id"])
    assert answer.status_code == 201, answer.text
    assert SECRET not in answer.text


# -- dashboard ------------------------------------------------------------------------------------


@pytest.fixture
def client(ctx) -> DashboardClient:
    client = DashboardClient(create_app(ctx))
    client.login()
    return client


def test_dashboard_processor_page_shows_what_is_missing_and_sets_values(ctx, vault, client):
    merchants.set_processor(ctx, TEST_MERCHANT_ID, "vault")
    page = client.get("/dashboard/processor")
    assert page.status_code == 200
    found = by_test_id(page.text)
    assert found["processor-name"][0].text == "vault"
    assert "merchant_code, api_key" in found["processor-missing"][0].text
    assert 'href="/dashboard/processor"' in page.text  # the nav link

    saved = client.post(
        "/dashboard/processor",
        {"setting_merchant_code": MID, "setting_api_key": SECRET, "setting_region": ""},
    )
    assert saved.status_code == 303, saved.text
    page = client.get("/dashboard/processor")
    found = by_test_id(page.text)
    assert "processor-missing" not in found and "processor-ready" in found
    assert SECRET not in page.text and MID in page.text
    assert found["setting-state-api_key"][0].text.startswith("Set")
    described = processor_configs.describe(ctx, TEST_MERCHANT_ID, "vault")
    assert described.ready and described.updated_by == "dashboard:test@example.com"

    # An empty secret input keeps the stored secret; a non-secret change is applied.
    saved = client.post(
        "/dashboard/processor",
        {"setting_merchant_code": "mid_Second", "setting_api_key": "", "setting_region": "x"},
    )
    assert saved.status_code == 303
    values = processor_configs.values_for(ctx, TEST_MERCHANT_ID, "vault")
    assert dict(values) == {"merchant_code": "mid_Second", "api_key": SECRET, "region": "x"}


def test_dashboard_processor_page_shows_validation_errors_and_needs_the_csrf_token(
    ctx, vault, client
):
    merchants.set_processor(ctx, TEST_MERCHANT_ID, "vault")
    client.get("/dashboard/processor")
    refused = client.post(
        "/dashboard/processor", {"setting_merchant_code": "bad", "setting_api_key": SECRET}
    )
    assert refused.status_code == 400
    found = by_test_id(refused.text)
    assert "must start with mid_" in found["processor-error"][0].text
    assert SECRET not in refused.text  # not even the secret just typed
    forged = client.post(
        "/dashboard/processor",
        {"setting_merchant_code": MID, "setting_api_key": SECRET},
        csrf="forged",
    )
    assert forged.status_code == 403
    assert processor_configs.describe(ctx, TEST_MERCHANT_ID, "vault").updated_at is None


def test_dashboard_processor_page_for_a_processor_without_settings(client):
    found = by_test_id(client.get("/dashboard/processor").text)
    assert found["processor-name"][0].text == "test"
    assert "processor-no-settings" in found


# -- the key setting ------------------------------------------------------------------------------


def test_encryption_keys_are_parsed_checked_and_kept_out_of_repr():
    a, b = key_text(), key_text()
    settings = make_settings(PAYGATE_ENCRYPTION_KEYS=f"b:{b}, a:{a}=, master")
    assert [key_id for key_id, _ in settings.encryption_keys] == ["b", "a", "master"]
    assert settings.encryption_keys[0][1] == base64.urlsafe_b64decode(b + "=")
    assert settings.encryption_keys[2][1] is None  # the derived key
    assert b not in repr(settings) and "encryption_keys" not in repr(settings)
    assert make_settings().encryption_keys == ()
    for wrong, message in [
        ("a:" + key_text()[:20], "32 random bytes"),
        ("nocolon", "32 random bytes"),
        (f"a:{a},a:{b}", "appears twice"),
        (f"bad id:{a}", "key ids are"),
    ]:
        with pytest.raises(ValueError, match=message):
            make_settings(PAYGATE_ENCRYPTION_KEYS=wrong)
