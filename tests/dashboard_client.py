"""An in-process dashboard client that keeps cookies like a browser and fills in CSRF tokens."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlencode

import falcon.testing

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class DashboardClient:
    def __init__(self, app):
        self.client = falcon.testing.TestClient(app)
        self.cookies: dict[str, str] = {}
        self.last_html = ""

    def _keep(self, result) -> None:
        for name, cookie in result.cookies.items():
            if cookie.value == "" or cookie.max_age == 0:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie.value

    def get(self, path: str, **kwargs):
        result = self.client.simulate_get(path, cookies=dict(self.cookies), **kwargs)
        self._keep(result)
        if result.content_type and result.content_type.startswith("text/html"):
            self.last_html = result.text
        return result

    def csrf(self, page: str = "") -> str:
        match = CSRF.search(page or self.last_html)
        assert match, "no CSRF token on the page"
        return html.unescape(match[1])

    def post(self, path: str, form: dict, *, csrf: bool | str = True, **kwargs):
        fields = dict(form)
        if csrf is True:
            fields["csrf_token"] = self.csrf()
        elif isinstance(csrf, str):
            fields["csrf_token"] = csrf
        result = self.client.simulate_post(
            path,
            body=urlencode(fields),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            cookies=dict(self.cookies),
            **kwargs,
        )
        self._keep(result)
        if result.content_type and result.content_type.startswith("text/html"):
            self.last_html = result.text
        return result

    def login(self, email: str = "test@example.com", password: str = "anything"):
        self.get("/login")
        result = self.post("/login", {"email": email, "password": password})
        assert result.status_code == 303, result.text
        return result


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parts: list[str] = field(default_factory=list)
    inside: list[str] = field(default_factory=list)  # test ids of the enclosing elements

    @property
    def text(self) -> str:
        return " ".join("".join(self.parts).split())


class _TestIds(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, Element | None]] = []
        self.found: list[Element] = []

    def handle_starttag(self, tag, attrs):
        values = {name: value or "" for name, value in attrs}
        element = None
        if "data-test-id" in values:
            enclosing = [e.attrs["data-test-id"] for _, e in self.stack if e is not None]
            element = Element(tag, values, inside=enclosing)
            self.found.append(element)
        if tag not in VOID:
            self.stack.append((tag, element))

    def handle_endtag(self, tag):
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                return

    def handle_data(self, data):
        for _, element in self.stack:
            if element is not None:
                element.parts.append(data)


def by_test_id(page: str) -> dict[str, list[Element]]:
    """Every element with a ``data-test-id``, by id, with its text and enclosing test ids."""
    parser = _TestIds()
    parser.feed(page)
    found: dict[str, list[Element]] = {}
    for element in parser.found:
        found.setdefault(element.attrs["data-test-id"], []).append(element)
    return found
