"""/api/v1/events/feed: the merchant's events in order, each with what a delivery of it carries
(``paygate listen`` polls it)."""

from __future__ import annotations

from ...services import event_feed
from ..middleware import merchant_of
from . import Resource, send


class EventFeed(Resource):
    auth = True

    def on_get(self, req, resp):
        feed = event_feed.read(
            self.ctx, merchant_of(req), req.params.get("after"), req.params.get("limit")
        )
        send(resp, event_feed.feed_view(feed))
