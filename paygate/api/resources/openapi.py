"""GET /api/v1/openapi.json: the hand-written OpenAPI 3.1 document of every route."""

from __future__ import annotations

from functools import cache
from importlib import resources

import falcon

from . import Resource


@cache
def document_bytes() -> bytes:
    """The document exactly as shipped in the package (``paygate/openapi.json``)."""
    return resources.files("paygate").joinpath("openapi.json").read_bytes()


class OpenApi(Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = document_bytes()
