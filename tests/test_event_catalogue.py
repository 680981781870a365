"""One event catalogue: the services, docs/webhooks.md, the dashboard's docs page and the OpenAPI
document list exactly the events of ``paygate.events``, and no code spells an event name itself.

Each list is read from where it lives (source by AST, the doc's table, the rendered page, the
JSON document); ``differences`` compares them, and the planted checks prove it can fail.
"""

from __future__ import annotations

import ast
import html
import json
import re
from pathlib import Path

import pytest

from paygate import events
from paygate.web.dashboard.app import create_app
from tests.dashboard_client import DashboardClient

ROOT = Path(__file__).resolve().parents[1]
CODE = ("paygate", "web", "plugins")
CATALOGUE_FILE = ROOT / "paygate" / "events.py"
# An event name's shape; file names such as "payment.html" are not events.
EVENT_LIKE = re.compile(r"(payment|refund|webhook)\.(?!(?:html|js|json|css|py)$)[a-z_]+")
# The catalogue's constants, by name (PAYMENT_SUCCESS -> "payment.success").
CONSTANTS = {
    name: value
    for name, value in vars(events).items()
    if name.isupper() and isinstance(value, str) and value in events.NAMES
}


def source_files() -> list[Path]:
    return [
        path
        for folder in CODE
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != CATALOGUE_FILE
    ]


def scan(source: str) -> tuple[set[str], set[str]]:
    """(events named through the catalogue's constants, event names spelled as literals)."""
    named, spelled = set(), set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in CONSTANTS:
            named.add(CONSTANTS[node.attr])
        elif isinstance(node, ast.Name) and node.id in CONSTANTS:
            named.add(CONSTANTS[node.id])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if EVENT_LIKE.fullmatch(node.value):
                spelled.add(node.value)
    return named, spelled


def emitted_by_the_code() -> tuple[set[str], dict[str, set[str]]]:
    named: set[str] = set()
    spelled: dict[str, set[str]] = {}
    for path in source_files():
        found, literals = scan(path.read_text())
        named |= found
        if literals:
            spelled[str(path.relative_to(ROOT))] = literals
    return named, spelled


def listed_in_the_webhooks_doc(text: str) -> list[str]:
    """The first column of the table under ``## Events``."""
    section = text.split("\n## Events\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z_.]+)` \|", section, re.M)


def listed_in_openapi(document: dict) -> tuple[list[str], set[str]]:
    """(the WebhookEvent enum, every other event name the document spells as a const/enum)."""
    schemas = document["components"]["schemas"]
    enum = schemas["WebhookEvent"]["enum"]
    others: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "const" and isinstance(value, str) and EVENT_LIKE.fullmatch(value):
                    others.add(value)
                elif key == "enum" and node is not schemas["WebhookEvent"]:
                    others.update(
                        v for v in value if isinstance(v, str) and EVENT_LIKE.fullmatch(v)
                    )
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    return enum, others


def listed_on_the_dashboard(page: str) -> list[tuple[str, str]]:
    section = page.split('data-test-id="section-events"', 1)[1].split("</section>", 1)[0]
    rows = re.findall(
        r'<tr data-event="([^"]+)"><td><code>[^<]*</code></td><td>([^<]*)</td>', section
    )
    return [(html.unescape(name), html.unescape(meaning)) for name, meaning in rows]


def differences(lists: dict[str, list[str] | set[str]]) -> dict[str, tuple[list, list]]:
    """Per list: (catalogue events it lacks, events it has that the catalogue lacks)."""
    catalogue = set(events.NAMES)
    found = {}
    for where, names in lists.items():
        missing, extra = sorted(catalogue - set(names)), sorted(set(names) - catalogue)
        if missing or extra:
            found[where] = (missing, extra)
    return found


@pytest.fixture(scope="module")
def openapi() -> dict:
    return json.loads((ROOT / "paygate" / "openapi.json").read_text())


def test_the_catalogue_names_each_event_once_with_a_meaning():
    assert len(set(events.NAMES)) == len(events.NAMES) == len(events.CATALOGUE)
    assert all(EVENT_LIKE.fullmatch(name) and meaning for name, meaning in events.CATALOGUE)
    assert set(CONSTANTS.values()) == set(events.NAMES)
    assert events.REFUND_FAILED in events.NAMES


def test_the_envelope_is_the_contract_body_and_refuses_names_outside_the_catalogue():
    body = events.envelope(events.PAYMENT_SUCCESS, {"payment": {"id": "pay_x"}}, 1705314660.9)
    assert body == {
        "event": "payment.success",
        "timestamp": 1705314660,
        "data": {"payment": {"id": "pay_x"}},
    }
    assert list(body) == ["event", "timestamp", "data"]
    with pytest.raises(ValueError, match="payment.refunded"):
        events.envelope("payment.refunded", {})


def test_the_code_emits_every_catalogue_event_and_spells_none_itself():
    named, spelled = emitted_by_the_code()
    assert spelled == {}, f"event names written as literals (use paygate.events): {spelled}"
    assert differences({"code": named}) == {}


def test_the_source_scan_sees_literals_and_constants():
    planted = 'from paygate import events\nsend("payment.refunded")\nx = events.REFUND_FAILED\n'
    assert scan(planted) == ({"refund.failed"}, {"payment.refunded"})
    # A docstring or a sentence that mentions an event is not an emitted literal.
    assert scan('"""Emits ``payment.success``."""\nnote = "see payment.success docs"\n') == (
        set(),
        set(),
    )


def test_the_webhooks_doc_lists_the_catalogue():
    listed = listed_in_the_webhooks_doc((ROOT / "docs" / "webhooks.md").read_text())
    assert len(listed) == len(set(listed))
    assert differences({"docs/webhooks.md": listed}) == {}


def test_the_openapi_document_lists_the_catalogue(openapi):
    enum, others = listed_in_openapi(openapi)
    assert enum == list(events.NAMES)
    assert others <= set(events.NAMES), others
    schemas = openapi["components"]["schemas"]
    webhook_event = {"$ref": "#/components/schemas/WebhookEvent"}
    assert schemas["WebhookPayload"]["properties"]["event"] == webhook_event
    assert schemas["WebhookLog"]["properties"]["event"] == webhook_event


def test_the_dashboard_docs_page_lists_the_catalogue_with_meanings(ctx):
    client = DashboardClient(create_app(ctx))
    client.login()
    page = client.get("/dashboard/docs").text
    assert listed_on_the_dashboard(page) == list(events.CATALOGUE)
    assert events.REFUND_FAILED in dict(listed_on_the_dashboard(page))


def test_a_planted_difference_in_any_list_fails(openapi):
    """Each reader, fed a list with one event dropped or one added, reports the difference."""
    doc = (ROOT / "docs" / "webhooks.md").read_text()
    dropped = doc.replace("| `refund.failed` |", "| refund failed |")
    assert differences({"doc": listed_in_the_webhooks_doc(dropped)}) == {
        "doc": (["refund.failed"], [])
    }
    planted = json.loads(json.dumps(openapi))
    planted["components"]["schemas"]["WebhookEvent"]["enum"].append("payment.refunded")
    enum, _ = listed_in_openapi(planted)
    assert differences({"openapi": enum}) == {"openapi": ([], ["payment.refunded"])}
    planted["components"]["schemas"]["WebhookTest"]["properties"]["event"]["const"] = "webhook.ping"
    assert listed_in_openapi(planted)[1] == {"webhook.ping"}
    page = (
        '<section data-test-id="section-events"><tr data-event="payment.created"><td><code>'
        "payment.created</code></td><td>made</td></section>"
    )
    names = [name for name, _ in listed_on_the_dashboard(page)]
    assert differences({"dashboard": names})["dashboard"][0] == sorted(
        set(events.NAMES) - {"payment.created"}
    )
