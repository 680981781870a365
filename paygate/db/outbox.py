"""The transactional outbox: events written by the same statement as the state change.

``events_cte()`` is a CTE fragment that records every event in the event log and inserts one
``webhook_logs`` row per event and subscribed endpoint, optionally only when another CTE
changed a row. Parameters it needs:
``merchant_id``, ``resource_id``, ``event_ids``, ``event_names``, ``event_bodies`` (see
``event_params``, which takes envelopes built by ``paygate.events.envelope``).
"""

from __future__ import annotations

import uuid
from typing import Any

from ..wire import compact_json


def events_cte(name: str = "events", *, only_if: str | None = None) -> str:
    """Two CTEs: ``{name}_recorded`` writes every event to the event log (``events``, what
    observers read), ``{name}`` one ``webhook_logs`` row per event and endpoint subscribed to
    it (the merchant's primary ``webhook_url``, whose log id is the event id, then each enabled
    ``webhook_endpoints`` row whose ``events`` is empty or names it) and returns their ids.
    ``only_if`` names a CTE that must have changed a row for anything to be written."""
    # The arrays go in binary (%b): psycopg's text format escapes every element with a regex,
    # about 9% of the API's CPU per payment created (the JSON bodies are long).
    guard = f"AND EXISTS (SELECT 1 FROM {only_if})" if only_if else ""
    rows = f"""SELECT e.id, %(merchant_id)s::uuid, e.event, %(resource_id)s, e.body
      FROM unnest(%(event_ids)b::uuid[], %(event_names)b::text[], %(event_bodies)b::text[])
           AS e(id, event, body)
     WHERE TRUE {guard}"""
    return _outbox(name, rows)


def events_rows_cte(rows: str, name: str = "events") -> str:
    """``events_cte`` for events of several merchants and resources: ``rows`` is a query
    whose rows are ``(id, merchant_id, event, resource_id, body)``, one per event."""
    return _outbox(name, rows, per_event=True)


def _outbox(name: str, rows: str, *, per_event: bool = False) -> str:
    """The event log's rows (``rows``) and their webhook logs. One merchant's events (the
    default) take the merchant and resource from the parameters, and its endpoints are read
    once; ``per_event``, from each recorded row, and each event's merchant's endpoints are
    read for it (``LATERAL``)."""
    if per_event:
        recorded, merchant, resource = (
            "id, merchant_id, event, resource_id, body",
            "e.merchant_id",
            "e.resource_id",
        )
    else:
        recorded, merchant, resource = "id, event, body", "%(merchant_id)s::uuid", "%(resource_id)s"
    lateral = "LATERAL " if per_event else ""
    return f"""{name}_recorded AS (
    INSERT INTO events (id, merchant_id, event, resource_id, body)
    {rows}
    RETURNING {recorded}
), {name} AS (
    INSERT INTO webhook_logs (id, merchant_id, event, resource_id, payload, body,
                              next_retry_at, enqueued_at, endpoint_id, event_id)
    SELECT CASE WHEN t.endpoint_id IS NULL THEN e.id ELSE gen_random_uuid() END,
           {merchant}, e.event, {resource}, e.body::jsonb, e.body, now(), now(),
           t.endpoint_id, e.id
      FROM {name}_recorded e
      JOIN {lateral}(SELECT NULL::uuid AS endpoint_id, '{{}}'::text[] AS events
              FROM merchants m
             WHERE m.id = {merchant} AND coalesce(m.webhook_url, '') <> ''
            UNION ALL
            SELECT w.id, w.events
              FROM webhook_endpoints w
             WHERE w.merchant_id = {merchant} AND w.enabled) t
        ON cardinality(t.events) = 0 OR e.event = ANY(t.events)
    RETURNING id
)"""


def event_params(
    merchant_id: str, resource_id: str | None, envelopes: list[dict[str, Any]]
) -> dict[str, Any]:
    """``envelopes`` are full event bodies from ``paygate.events.envelope``."""
    return {
        "merchant_id": merchant_id,
        "resource_id": resource_id,
        "event_ids": [uuid.uuid4() for _ in envelopes],
        "event_names": [body["event"] for body in envelopes],
        "event_bodies": [compact_json(body).decode("utf-8") for body in envelopes],
    }
