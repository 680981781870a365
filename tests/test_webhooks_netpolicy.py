"""The SSRF address policy shared by webhook configuration and the notifier's connect step."""

from __future__ import annotations

import socket

import pytest

import paygate
from paygate.netpolicy import webhook_address_allowed, webhook_url_problem

REFUSED = [
    "127.0.0.1",
    "127.255.0.9",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.1.1",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "192.0.2.10",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "fe80::1%eth0",
    "not-an-address",
]
ALLOWED = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address):
    assert webhook_address_allowed(address) is False


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address):
    assert webhook_address_allowed(address) is True


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "::1", "192.168.1.1"])
def test_the_development_switch_allows_private_addresses(address):
    assert webhook_address_allowed(address, allow_private=True) is True


@pytest.mark.parametrize(
    "address", ["169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16"]
)
def test_metadata_addresses_are_refused_even_with_the_switch(address):
    assert webhook_address_allowed(address, allow_private=True) is False


def test_the_policy_is_part_of_the_public_plugin_surface():
    assert paygate.webhook_address_allowed is webhook_address_allowed
    assert paygate.webhook_url_problem is webhook_url_problem


def resolver(*addresses: str):
    def resolve(host, port, family=0, type=0):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return resolve


def unresolvable(host, port, family=0, type=0):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("ftp://93.184.216.34/hook", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("http:///nohost", "host"),
        ("http://93.184.216.34:99999/", "not a valid URL"),
        ("http://93.184.216.34/a b", "spaces"),
        ("http://127.0.0.1:8080/hook", "127.0.0.1"),
        ("http://[::1]/hook", "::1"),
        ("http://[::ffff:127.0.0.1]/hook", "::ffff:7f00:1"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
        ("http://localhost:3000/hook", "loopback"),
        ("http://api.localhost/hook", "loopback"),
        ("http://2130706433/", "127.0.0.1"),  # decimal form of 127.0.0.1, resolved by the OS
        ("https://example.test/" + "a" * 2100, "at most"),
    ],
)
def test_configuration_refuses_bad_and_internal_urls(url, fragment):
    problem = webhook_url_problem(url)
    assert problem is not None and fragment in problem


def test_a_name_is_judged_by_every_address_it_resolves_to():
    assert webhook_url_problem("https://hooks.example/x", resolve=resolver("93.184.216.34")) is None
    problem = webhook_url_problem(
        "https://hooks.example/x", resolve=resolver("93.184.216.34", "10.0.0.5")
    )
    assert problem is not None and "10.0.0.5" in problem


def test_an_unresolvable_name_is_accepted_and_left_to_the_connect_time_check():
    assert webhook_url_problem("https://hooks.example/x", resolve=unresolvable) is None


def test_the_switch_accepts_local_receivers_but_never_metadata():
    assert webhook_url_problem("http://127.0.0.1:9000/hook", allow_private=True) is None
    assert webhook_url_problem("http://localhost:9000/hook", allow_private=True) is None
    assert webhook_url_problem("http://169.254.169.254/", allow_private=True) is not None
