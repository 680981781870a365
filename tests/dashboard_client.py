"""An in-process dashboard client that keeps cookies like a browser and fills in CSRF tokens."""

from __future__ import annotations

import html
import re
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
