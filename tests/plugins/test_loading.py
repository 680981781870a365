"""Loading plugins: entry points of installed distributions, PAYGATE_DISABLE_PLUGINS, and a
clear start-up error naming whichever plugin is broken."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid

import pytest

from paygate import PluginError, hookimpl
from paygate.plugins import DEFAULT_PLUGINS, load_plugins
from paygate.testing import register_plugin
from tests.fixtures import make_settings
from tests.plugins.helpers import TINYBANK, ProvidesProcessors, ScriptedBank, fake_distribution


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A directory on sys.path where tests "install" distributions."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"  # a fresh module name: no stale sys.modules


def paygate_cli(*args: str, site=None, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, **env}
    if site is not None:
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "paygate", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


def test_built_ins_are_listed_with_kind_distribution_version_and_hooks():
    rows = {row.name: row for row in load_plugins(make_settings()).info()}
    testmode = rows["paygate.builtin.processors.testmode"]
    assert testmode.kind == "processor" and testmode.processors == ("test",)
    assert (testmode.distribution, testmode.builtin) == ("paygate", True)
    assert testmode.hooks == ("paygate_register_processors",)
    assert rows["paygate.builtin.notifiers.hmac_webhook"].notifiers == ("webhook",)
    assert rows["paygate.builtin.policies.refund_window"].kind == "refund_policy"


def test_an_installed_distribution_is_loaded_through_its_entry_point(site):
    module = unique("tinybank")
    fake_distribution(site, "paygate-tinybank", "1.2.3", {"tinybank": module}, {module: TINYBANK})
    plugins = load_plugins(make_settings())
    assert plugins.processor("tinybank").methods == {"upi"}
    (row,) = [row for row in plugins.info() if row.name == "tinybank"]
    assert (row.distribution, row.version, row.kind, row.builtin) == (
        "paygate-tinybank",
        "1.2.3",
        "processor",
        False,
    )


def test_a_plugin_that_fails_to_import_is_named_with_its_distribution(site):
    module = unique("broken")
    source = "raise ImportError('needs libfoo')\n"
    fake_distribution(site, "paygate-broken", "0.9", {"broken": module}, {module: source})
    with pytest.raises(PluginError) as raised:
        load_plugins(make_settings())
    message = str(raised.value)
    assert "'broken'" in message and "'paygate-broken'" in message and "needs libfoo" in message
    assert "PAYGATE_DISABLE_PLUGINS=broken" in message


def test_disabling_a_broken_plugin_by_name_or_distribution_lets_the_gateway_start(site):
    module = unique("broken")
    fake_distribution(site, "paygate-broken", "0.9", {"broken": module}, {module: "1/0\n"})
    for name in ("broken", "paygate-broken"):
        plugins = load_plugins(make_settings(PAYGATE_DISABLE_PLUGINS=name))
        assert "broken" in plugins.disabled and "test" in plugins.processors


def test_two_distributions_claiming_one_plugin_name_are_refused(site):
    one, other = unique("one"), unique("other")
    fake_distribution(site / "a", "paygate-one", "1", {"samebank": one}, {one: TINYBANK})
    fake_distribution(site / "b", "paygate-other", "1", {"samebank": other}, {other: TINYBANK})
    sys.path[:0] = [str(site / "a"), str(site / "b")]
    try:
        with pytest.raises(PluginError, match="'paygate-one' and 'paygate-other'"):
            load_plugins(make_settings())
    finally:
        del sys.path[:2]


def test_disable_plugins_accepts_module_processor_and_notifier_names():
    plugins = load_plugins(
        make_settings(
            PAYGATE_DISABLE_PLUGINS="paygate.builtin.policies.refund_window,test,webhook"
        ),
        entry_points=False,
    )
    assert "paygate.builtin.policies.refund_window" not in dict(plugins.pm.list_name_plugin())
    assert plugins.processors == {} and plugins.notifiers == {}
    assert plugins.disabled == [
        "paygate.builtin.policies.refund_window",
        "processor:test",
        "notifier:webhook",
    ]
    short = load_plugins(make_settings(PAYGATE_DISABLE_PLUGINS="testmode"), entry_points=False)
    assert "test" not in short.processors and short.disabled == [
        "paygate.builtin.processors.testmode"
    ]


def test_a_disable_name_that_matches_nothing_is_warned_about(caplog):
    with caplog.at_level(logging.WARNING, logger="paygate.plugins"):
        load_plugins(make_settings(PAYGATE_DISABLE_PLUGINS="tset"))
    assert "PAYGATE_DISABLE_PLUGINS names tset" in caplog.text


def test_a_misspelled_hook_implementation_is_refused():
    class Typo:
        @hookimpl
        def paygate_register_processor(self, register):  # missing the final "s"
            register(ScriptedBank())

    plugins = load_plugins(make_settings())
    with pytest.raises(PluginError, match="paygate_register_processor"):
        with register_plugin(plugins, Typo()):
            pass
    assert "Typo" not in str(plugins.pm.list_name_plugin())


def test_a_processor_missing_an_operation_is_refused_naming_the_plugin():
    class NoSync:
        name, methods = "halfbank", frozenset({"upi"})
        supports_partial_refund = supports_manual_capture = False

        def charge(self, request): ...

        def capture(self, payment, amount): ...

        def refund(self, payment, refund): ...

    plugins = load_plugins(make_settings(), entry_points=False)
    with pytest.raises(PluginError, match="'halfplugin'.*'halfbank' without sync"):
        with register_plugin(plugins, ProvidesProcessors(NoSync()), name="halfplugin"):
            pass


@pytest.mark.parametrize("methods", ["upi", frozenset(), [1]])
def test_a_processor_without_a_set_of_method_names_is_refused(methods):
    plugins = load_plugins(make_settings(), entry_points=False)
    bank = ScriptedBank(name="oddbank", methods=methods)
    with pytest.raises(PluginError, match="methods"):
        with register_plugin(plugins, ProvidesProcessors(bank)):
            pass


def test_two_processors_with_one_name_are_refused_naming_both_plugins():
    plugins = load_plugins(make_settings(), entry_points=False)
    with pytest.raises(PluginError) as raised:
        with register_plugin(plugins, ProvidesProcessors(ScriptedBank(name="test")), name="dup"):
            pass
    assert "'paygate.builtin.processors.testmode'" in str(raised.value) and "'dup'" in str(
        raised.value
    )
    assert plugins.processor("test").__class__.__name__ == "TestModeProcessor"  # unharmed


def test_a_registration_hook_that_raises_is_named():
    class Exploding:
        @hookimpl
        def paygate_register_notifiers(self, register):
            raise RuntimeError("no API key configured")

    plugins = load_plugins(make_settings(), entry_points=False)
    with pytest.raises(PluginError, match="'boom' failed in paygate_register_notifiers"):
        with register_plugin(plugins, Exploding(), name="boom"):
            pass


def test_default_plugins_are_the_only_built_ins():
    assert DEFAULT_PLUGINS == (
        "paygate.builtin.processors.testmode",
        "paygate.builtin.notifiers.hmac_webhook",
        "paygate.builtin.policies.refund_window",
    )


# -- operators: the paygate command -------------------------------------------------------


def test_paygate_plugins_json_shows_an_installed_plugin_and_what_is_disabled(site):
    module = unique("tinybank")
    fake_distribution(site, "paygate-tinybank", "1.2.3", {"tinybank": module}, {module: TINYBANK})
    result = paygate_cli(
        "plugins",
        "--json",
        site=site,
        PAYGATE_DISABLE_PLUGINS="paygate.builtin.policies.refund_window",
    )
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    (row,) = [row for row in listing["data"] if row["name"] == "tinybank"]
    assert row == {
        "name": "tinybank",
        "kind": "processor",
        "distribution": "paygate-tinybank",
        "version": "1.2.3",
        "builtin": False,
        "hooks": ["paygate_register_processors"],
        "processors": ["tinybank"],
        "notifiers": [],
        "observers": [],
        "requires_api": None,
        "refund_policy_scope": None,
    }
    assert {"name": "tinybank", "plugin": "tinybank", "methods": ["upi"]}.items() <= next(
        p for p in listing["processors"] if p["name"] == "tinybank"
    ).items()
    assert listing["disabled"] == ["paygate.builtin.policies.refund_window"]


def test_paygate_plugins_text_names_kind_and_distribution(site):
    module = unique("tinybank")
    fake_distribution(site, "paygate-tinybank", "1.2.3", {"tinybank": module}, {module: TINYBANK})
    result = paygate_cli("plugins", site=site, PAYGATE_DISABLE_PLUGINS="webhook")
    assert result.returncode == 0, result.stderr
    assert "tinybank\n    kind:         processor\n    provides:     processor tinybank" in (
        result.stdout
    )
    assert "distribution: paygate-tinybank 1.2.3" in result.stdout
    assert "disabled by PAYGATE_DISABLE_PLUGINS: notifier:webhook" in result.stdout


@pytest.mark.parametrize("command", [["worker"], ["api", "--port", "1"], ["plugins"]])
def test_a_broken_plugin_stops_start_up_with_one_line_naming_it(site, command):
    module = unique("broken")
    source = "import not_installed_anywhere\n"
    fake_distribution(site, "paygate-broken", "0.9", {"broken": module}, {module: source})
    result = paygate_cli(*command, site=site)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("paygate:")]
    assert "'broken' from distribution 'paygate-broken' 0.9 failed to load" in line
    assert "not_installed_anywhere" in line
