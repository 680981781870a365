"""The webhook SSRF policy refuses every range that reaches inside the network, at configuration
time (the URL a merchant saves) and at connect time (the address the notifier connects to), in
strict mode and, for link-local and metadata addresses, with the development switch too."""

from __future__ import annotations

import socket
import time

import falcon.testing
import pytest

from paygate.api.app import create_app
from paygate.builtin.notifiers import hmac_webhook
from paygate.netpolicy import webhook_address_allowed, webhook_url_problem
from paygate.types import Delivery
from tests.fixtures import AUTH

# Refused without the switch (production). Each names the range it stands for.
STRICT_REFUSED = {
    "::a00:1": "IPv4-compatible ::/96 of 10.0.0.1",
    "::7f00:1": "IPv4-compatible of 127.0.0.1",
    "::a9fe:a9fe": "IPv4-compatible of 169.254.169.254",
    "::808:808": "IPv4-compatible of a public address (deprecated, not routable)",
    "::ffff:0:a00:1": "IPv4-translated ::ffff:0:0:0/96 of 10.0.0.1",
    "64:ff9b:1::a00:1": "local-use NAT64 64:ff9b:1::/48",
    "64:ff9b:1::808:808": "local-use NAT64 of a public address (the site's own translator)",
    "64:ff9b::7f00:1": "NAT64 64:ff9b::/96 of 127.0.0.1",
    "64:ff9b::c0a8:101": "NAT64 of 192.168.1.1",
    "64:ff9b::a9fe:a9fe": "NAT64 of 169.254.169.254",
    "2002:a00:1::1": "6to4 2002::/16 of 10.0.0.1",
    "2002:c0a8:101::1": "6to4 of 192.168.1.1",
    "2002:a9fe:a9fe::1": "6to4 of 169.254.169.254",
    "::ffff:169.254.169.254": "IPv4-mapped ::ffff:0:0/96 of the metadata address",
    "::ffff:192.168.1.1": "IPv4-mapped of 192.168.1.1",
    "::ffff:0.0.0.0": "IPv4-mapped of 0.0.0.0",
    "fec0::1": "site-local fec0::/10 (deprecated, still routed inside some networks)",
    "3fff::1": "documentation 3fff::/20",
    "5f00::1": "segment routing 5f00::/16",
    "192.0.0.8": "IETF protocol assignments 192.0.0.0/24",
}
# Refused even with PAYGATE_ALLOW_PRIVATE_WEBHOOKS: link-local is where metadata services live.
DEV_REFUSED = {
    "169.254.0.1": "IPv4 link-local 169.254.0.0/16",
    "169.254.1.1": "IPv4 link-local",
    "169.254.255.254": "IPv4 link-local",
    "fe80::1": "IPv6 link-local fe80::/10",
    "fe80::a9fe:a9fe": "IPv6 link-local",
    "febf:ffff::1": "IPv6 link-local, top of the range",
    "::ffff:169.254.1.1": "IPv4-mapped of link-local",
    "::a9fe:101": "IPv4-compatible of link-local",
    "64:ff9b::a9fe:101": "NAT64 of link-local",
    "64:ff9b:1::a9fe:101": "local-use NAT64 of link-local",
    "2002:a9fe:101::1": "6to4 of link-local",
    "::ffff:0:a9fe:101": "IPv4-translated of link-local",
}
# Still allowed: public addresses in every form a translator reaches, and (switch on) the local
# receivers a developer runs.
STRICT_ALLOWED = ["8.8.8.8", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"]
DEV_ALLOWED = ["127.0.0.1", "::1", "10.1.2.3", "192.168.1.1", "fd12:3456::1", "::ffff:10.0.0.1"]


def resolving_to(address: str):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    def resolve(host, port, family_=0, type_=0, *args):
        sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
        return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]

    return resolve


def url_of(address: str) -> str:
    return f"http://[{address}]:8080/hook" if ":" in address else f"http://{address}:8080/hook"


# -- configuration time ------------------------------------------------------------------------


@pytest.mark.parametrize("address", list(STRICT_REFUSED) + list(DEV_REFUSED))
def test_strict_mode_refuses_internal_ranges_at_configuration_time(address):
    assert webhook_address_allowed(address) is False
    assert webhook_url_problem(url_of(address)) is not None
    problem = webhook_url_problem("https://hooks.example/x", resolve=resolving_to(address))
    assert problem is not None and address in problem


@pytest.mark.parametrize("address", list(DEV_REFUSED))
def test_the_development_switch_still_refuses_link_local_at_configuration_time(address):
    assert webhook_address_allowed(address, allow_private=True) is False
    assert webhook_url_problem(url_of(address), allow_private=True) is not None
    resolve = resolving_to(address)
    assert webhook_url_problem("http://hooks.example/x", allow_private=True, resolve=resolve)


@pytest.mark.parametrize("address", STRICT_ALLOWED)
def test_public_addresses_stay_allowed_in_every_form(address):
    assert webhook_address_allowed(address) is True
    assert webhook_address_allowed(address, allow_private=True) is True


@pytest.mark.parametrize("address", DEV_ALLOWED)
def test_the_development_switch_still_allows_local_receivers(address):
    assert webhook_address_allowed(address, allow_private=True) is True


@pytest.mark.parametrize(
    ("switch", "address"),
    [("false", a) for a in ("::a00:1", "64:ff9b:1::a00:1", "2002:a00:1::1", "169.254.3.4")]
    + [("true", a) for a in ("169.254.3.4", "fe80::1", "::a9fe:a9fe", "64:ff9b:1::a9fe:101")],
)
def test_the_webhook_config_endpoint_refuses_internal_ranges(make_ctx, switch, address):
    ctx = make_ctx(PAYGATE_ALLOW_PRIVATE_WEBHOOKS=switch)
    api = falcon.testing.TestClient(create_app(ctx))
    result = api.simulate_post(
        "/api/v1/webhooks/config", json={"webhook_url": url_of(address)}, headers=AUTH
    )
    assert result.status_code == 400, result.text
    assert result.json["error"]["field"] == "webhook_url"


# -- connect time --------------------------------------------------------------------------------


@pytest.fixture
def dns(monkeypatch):
    """``hooks.example`` resolves to what the test says (other names resolve as usual)."""
    real = socket.getaddrinfo
    answer: dict[str, str] = {}

    def getaddrinfo(host, *args, **kwargs):
        if host == "hooks.example":
            return resolving_to(answer["address"])(host, *args)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(hmac_webhook.socket, "getaddrinfo", getaddrinfo)
    return answer


def deliver(allow_private: bool):
    delivery = Delivery(
        id="msg_ssrf",
        event="webhook.test",
        url="http://hooks.example:8080/hook",
        body=b"{}",
        secret="whsec_test_abc123",
        attempt=1,
        timestamp=int(time.time()),
        timeout=1.0,
        allow_private=allow_private,
    )
    return hmac_webhook.HmacWebhookNotifier().deliver(delivery)


@pytest.mark.parametrize("address", list(STRICT_REFUSED) + list(DEV_REFUSED))
def test_strict_mode_refuses_internal_ranges_at_connect_time(dns, address):
    dns["address"] = address
    result = deliver(allow_private=False)
    assert not result.ok and result.error == f"address not allowed: {address}", result


@pytest.mark.parametrize("address", list(DEV_REFUSED))
def test_the_development_switch_still_refuses_link_local_at_connect_time(dns, address):
    dns["address"] = address
    result = deliver(allow_private=True)
    assert not result.ok and result.error == f"address not allowed: {address}", result
