"""The OpenAPI document's operations, the app's routes, and a WSGI wrapper that counts calls."""

from __future__ import annotations

import collections
import json
import re
from importlib import resources
from typing import Any

from paygate.api.app import ROUTES

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def document() -> dict[str, Any]:
    return json.loads(resources.files("paygate").joinpath("openapi.json").read_bytes())


def shape(template: str) -> str:
    """A path template with its parameter names erased: ``/a/{x}/b`` -> ``/a/{}/b``."""
    return re.sub(r"\{[^}]*\}", "{}", template)


def documented_operations(doc: dict[str, Any] | None = None) -> set[tuple[str, str]]:
    doc = doc or document()
    return {
        (method.upper(), shape(path))
        for path, item in doc["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def routed_operations(routes=ROUTES) -> set[tuple[str, str]]:
    """(METHOD, path shape) for every responder of every route the app serves."""
    return {
        (method.upper(), shape(path))
        for path, resource in routes
        for method in HTTP_METHODS
        if callable(getattr(resource, f"on_{method}", None))
    }


class OperationCounter:
    """WSGI middleware counting requests (and answers by status) per documented operation."""

    def __init__(self, app, doc: dict[str, Any] | None = None):
        self.app = app
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.statuses: collections.Counter[tuple[str, str, int]] = collections.Counter()
        # Static segments win over parameters (``/payments/public`` before ``/payments/{}``).
        shapes = sorted({s for _, s in documented_operations(doc)}, key=lambda s: s.count("{}"))
        self.patterns = [
            (s, re.compile("^" + re.escape(s).replace(r"\{\}", "[^/]+") + "/?$")) for s in shapes
        ]

    def operation(self, method: str, path: str) -> tuple[str, str] | None:
        for template, pattern in self.patterns:
            if pattern.match(path):
                return method.upper(), template
        return None

    def __call__(self, environ, start_response):
        key = self.operation(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""))
        if key is None:
            return self.app(environ, start_response)
        self.counts[key] += 1

        def recording_start_response(status, headers, exc_info=None):
            self.statuses[(*key, int(status.split()[0]))] += 1
            return start_response(status, headers, exc_info)

        return self.app(environ, recording_start_response)
