"""The versioned plugin API (issue 17, done-when 4): a plugin declares the plugin API it needs
(``paygate_api``), an incompatible one stops start-up with a message naming the plugin, its
distribution and version, both API versions and the disable hint; a plugin written for 1.0
(``settings``) or for today's API loads unchanged; hooks get a ``context`` of their own."""

from __future__ import annotations

import inspect
import json

import pytest

import paygate
from paygate import PluginContext, PluginError, hookimpl
from paygate.config import Settings
from paygate.plugins import PLUGIN_API_VERSION, load_plugins
from paygate.testing import register_plugin
from tests.fixtures import make_settings
from tests.plugins import test_loading
from tests.plugins.helpers import TINYBANK, fake_distribution
from tests.plugins.test_loading import paygate_cli, unique
from tests.plugins.test_meta import hook_specs

site = test_loading.site  # a directory on sys.path where tests install distributions

HINT = "Fix or uninstall it, or start without it: PAYGATE_DISABLE_PLUGINS="


def declaring(requirement: str | None, source: str = TINYBANK) -> str:
    """TINYBANK's module source with ``paygate_api = requirement`` (None: no declaration)."""
    return source if requirement is None else f"paygate_api = {requirement!r}\n{source}"


def install(site, requirement, name="tinybank", dist="paygate-tinybank", version="1.2.3"):
    module = unique(name)
    fake_distribution(site, dist, version, {name: module}, {module: declaring(requirement)})
    return module


def test_paygate_exports_the_plugin_api_version():
    assert paygate.PLUGIN_API_VERSION == PLUGIN_API_VERSION == "1.1"
    assert "PLUGIN_API_VERSION" in paygate.__all__


@pytest.mark.parametrize("requirement", [">=2.0", ">=1.2,<2", "<1.1", "==1.0", "~=2.1"])
def test_a_plugin_requiring_another_api_fails_naming_everything_an_operator_needs(
    site, requirement
):
    install(site, requirement, dist="paygate-fastbank", version="3.0.0")
    with pytest.raises(PluginError) as raised:
        load_plugins(make_settings())
    message = str(raised.value)
    assert message.startswith("plugin 'tinybank' requires plugin API " + requirement)
    assert f"implements plugin API {PLUGIN_API_VERSION}" in message
    assert f"(paygate {paygate.__version__})" in message
    assert "distribution 'paygate-fastbank' 3.0.0" in message
    assert message.endswith(HINT + "tinybank")


@pytest.mark.parametrize("requirement", [None, ">=1.0", ">=1.1,<2", "~=1.1", ">=1,<2", "==1.1.*"])
def test_a_plugin_written_for_this_api_or_for_1_0_loads_unchanged(site, requirement):
    install(site, requirement)
    plugins = load_plugins(make_settings())
    assert plugins.processor("tinybank").methods == {"upi"}
    (row,) = [row for row in plugins.info() if row.name == "tinybank"]
    assert row.requires_api == requirement


@pytest.mark.parametrize("requirement", ["1.1", "banana", 11, (">=1.1",)])
def test_a_declaration_that_is_not_a_version_specifier_is_refused(site, requirement):
    module = unique("tinybank")
    source = f"paygate_api = {requirement!r}\n{TINYBANK}"
    fake_distribution(site, "paygate-tinybank", "1.2.3", {"tinybank": module}, {module: source})
    with pytest.raises(PluginError, match="not a version specifier") as raised:
        load_plugins(make_settings())
    assert "distribution 'paygate-tinybank' 1.2.3" in str(raised.value)
    assert str(raised.value).endswith(HINT + "tinybank")


def test_a_refused_plugin_is_left_out_when_tolerant_and_disabling_it_starts_the_gateway(site):
    install(site, ">=2")
    plugins = load_plugins(make_settings(), tolerant=True)
    assert "tinybank" not in plugins.processors and "test" in plugins.processors
    (failure,) = plugins.failures
    assert failure.name == "tinybank" and "requires plugin API >=2" in failure.error
    assert "tinybank" in load_plugins(make_settings(PAYGATE_DISABLE_PLUGINS="tinybank")).disabled


def test_built_ins_and_extra_objects_are_checked_too(site):
    module = unique("builtin_like")
    (site / f"{module}.py").write_text(declaring(">=7"))
    with pytest.raises(PluginError) as raised:
        load_plugins(make_settings(), defaults=(module,), entry_points=False)
    assert "distribution 'paygate'" in str(raised.value)
    assert str(raised.value).endswith(HINT + module)

    class Future:
        paygate_api = ">=3"

        @hookimpl
        def paygate_register_processors(self, register): ...

    with pytest.raises(PluginError) as raised:
        load_plugins(make_settings(), entry_points=False, extra=[Future()])
    message = str(raised.value)
    assert "'Future' requires plugin API >=3" in message
    assert "(not from an installed distribution)" in message and message.endswith(HINT + "Future")


def test_the_built_ins_declare_todays_api():
    rows = load_plugins(make_settings(), entry_points=False).info()
    assert {row.name: row.requires_api for row in rows} == {
        name: ">=1.1,<2"
        for name in (
            "paygate.builtin.processors.testmode",
            "paygate.builtin.notifiers.hmac_webhook",
            "paygate.builtin.policies.refund_window",
        )
    }


# -- every failing plugin names its distribution, version and the disable hint -------------------

RAISES_AT_REGISTRATION = """
from paygate import hookimpl

@hookimpl
def paygate_register_notifiers(register):
    raise RuntimeError("no API key configured")
"""
MISSPELLED_HOOK = """
from paygate import hookimpl

@hookimpl
def paygate_register_processor(register):
    pass
"""
DUPLICATE_PROCESSOR = TINYBANK.replace('name = "tinybank"', 'name = "test"')
HALF_A_PROCESSOR = """
from paygate import hookimpl

class Half:
    name, methods = "half", frozenset({"upi"})

@hookimpl
def paygate_register_processors(register):
    register(Half())
"""
BAD_POLICY_SCOPE = "paygate_policy_processors = 'httpbank'\n" + TINYBANK


@pytest.mark.parametrize(
    "source, says",
    [
        (RAISES_AT_REGISTRATION, "failed in paygate_register_notifiers: RuntimeError"),
        (MISSPELLED_HOOK, "paygate_register_processor"),
        (DUPLICATE_PROCESSOR, "processor 'test' registered twice"),
        (HALF_A_PROCESSOR, "registered processor 'half' without"),
        (BAD_POLICY_SCOPE, "paygate_policy_processors = 'httpbank'"),
        ("raise ImportError('needs libfoo')\n", "failed to load: ImportError: needs libfoo"),
    ],
)
def test_every_load_or_registration_failure_names_distribution_version_and_hint(site, source, says):
    module = unique("acmepay")
    fake_distribution(site, "paygate-acmepay", "4.5.6", {"acmepay": module}, {module: source})
    with pytest.raises(PluginError) as raised:
        load_plugins(make_settings())
    message = str(raised.value)
    assert says in message and "'acmepay'" in message
    assert "'paygate-acmepay' 4.5.6" in message
    assert message.endswith(HINT + "acmepay")
    tolerant = load_plugins(make_settings(), tolerant=True)
    assert [failure.error for failure in tolerant.failures] == [message]


def test_an_incompatible_installed_plugin_stops_the_paygate_command_with_one_line(site):
    install(site, ">=2,<3", dist="paygate-fastbank", version="3.0.0")
    result = paygate_cli("worker", site=site)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("paygate:")]
    assert "plugin 'tinybank' requires plugin API >=2,<3" in line
    assert "implements plugin API 1.1" in line and "'paygate-fastbank' 3.0.0" in line
    assert line.endswith("PAYGATE_DISABLE_PLUGINS=tinybank")


def test_paygate_plugins_shows_each_declared_requirement(site):
    install(site, ">=1.1,<2")
    listing = paygate_cli("plugins", "--json", site=site)
    assert listing.returncode == 0, listing.stderr
    rows = {row["name"]: row for row in json.loads(listing.stdout)["data"]}
    assert rows["tinybank"]["requires_api"] == ">=1.1,<2"
    text = paygate_cli("plugins", site=site)
    assert "tinybank\n" in text.stdout and "    plugin API:   >=1.1,<2\n" in text.stdout


# -- context, and the 1.0 arguments beside it ---------------------------------------------------

RECORDS_CONTEXT = """
from paygate import hookimpl

seen = {}

@hookimpl
def paygate_register_notifiers(register, context):
    seen["context"] = context
"""


def test_context_reaches_each_hook_with_the_plugins_own_configuration_only(site):
    alpha, beta = unique("alpha"), unique("beta")
    fake_distribution(site / "a", "paygate-alpha", "1", {"alpha": alpha}, {alpha: RECORDS_CONTEXT})
    fake_distribution(site / "b", "paygate-beta", "1", {"beta-obs": beta}, {beta: RECORDS_CONTEXT})
    import sys

    sys.path[:0] = [str(site / "a"), str(site / "b")]
    try:
        load_plugins(
            make_settings(
                PAYGATE_PLUGIN_ALPHA_TIMEOUT="5",
                PAYGATE_PLUGIN_ALPHA_REGION="eu",
                PAYGATE_PLUGIN_BETA_OBS_PATH="/tmp/events.jsonl",
                PAYGATE_PLUGIN_GAMMA_KEY="not for them",
                TEST_MODE="true",
            )
        )
        got_alpha = sys.modules[alpha].seen["context"]
        got_beta = sys.modules[beta].seen["context"]
    finally:
        del sys.path[:2]
    assert isinstance(got_alpha, PluginContext)
    assert (got_alpha.plugin, dict(got_alpha.config)) == ("alpha", {"timeout": "5", "region": "eu"})
    assert (got_beta.plugin, dict(got_beta.config)) == ("beta-obs", {"path": "/tmp/events.jsonl"})
    assert got_alpha.test_mode is True and got_alpha.api_version == PLUGIN_API_VERSION
    assert got_alpha.log.name == "paygate.plugin.alpha"


def test_a_1_0_plugin_taking_settings_loads_and_works_unchanged():
    """Written before 1.1: takes ``settings`` (deprecated, still passed) and never ``context``."""
    got = {}

    class Legacy:
        @hookimpl
        def paygate_register_processors(self, register, settings):
            got["settings"] = settings
            from tests.plugins.helpers import ScriptedBank

            register(ScriptedBank(name="legacybank"))

        @hookimpl
        def paygate_refund_policy(self, payment, refund_request, refunded_amount, settings):
            got["policy settings"] = settings
            return None

    settings = make_settings()
    plugins = load_plugins(settings, entry_points=False)
    with register_plugin(plugins, Legacy(), name="legacy"):
        assert "legacybank" in plugins.processors
        assert isinstance(got["settings"], Settings) and got["settings"] is settings
        from tests.plugins.test_policy_scope import PAID, ask

        assert ask(plugins, PAID) is None
        assert got["policy settings"] is settings


def test_every_hook_spec_says_when_it_was_added_and_what_is_deprecated():
    for name, fn in hook_specs().items():
        doc = inspect.getdoc(fn) or ""
        assert ".. versionadded:: 1." in doc, name
        params = inspect.signature(fn).parameters
        assert "context" in params, f"{name}: every hook receives context since 1.1"
        if "settings" in params:
            assert ".. deprecated:: 1.1 ``settings``" in doc, name
