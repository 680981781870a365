-- Issue 17: the event log every event goes to (observers read it), and webhook endpoints
-- beyond the merchant's primary webhook_url.

-- Every event of every merchant, whether or not it has a webhook URL, written by the same
-- statement as the state change that caused it (the outbox). ``seq`` orders them; ``txid`` is
-- the writing transaction, so a reader can wait until every transaction that might still
-- commit a lower ``seq`` has ended (see paygate/db/events.py).
CREATE TABLE events (
    seq          BIGSERIAL    PRIMARY KEY,
    -- Not indexed: nothing looks an event up by id (the primary delivery's log id is the
    -- event id, and webhook_logs is keyed by it); every index here is paid on the hot path.
    id           UUID         NOT NULL,
    txid         XID8         NOT NULL DEFAULT pg_current_xact_id(),
    merchant_id  UUID         NOT NULL REFERENCES merchants(id),
    event        VARCHAR(50)  NOT NULL,
    resource_id  VARCHAR(64),
    body         TEXT         NOT NULL,
    created_at   TIMESTAMPTZ  NOT NULL DEFAULT now()
);

-- A merchant's further webhook endpoints (the primary one stays merchants.webhook_url).
-- ``events`` empty: every event.
CREATE TABLE webhook_endpoints (
    id             UUID         PRIMARY KEY,
    merchant_id    UUID         NOT NULL REFERENCES merchants(id),
    url            TEXT         NOT NULL,
    events         TEXT[]       NOT NULL DEFAULT '{}',
    secret_sealed  TEXT         NOT NULL,
    description    VARCHAR(255),
    enabled        BOOLEAN      NOT NULL DEFAULT TRUE,
    created_at     TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ  NOT NULL DEFAULT now()
);
CREATE INDEX idx_webhook_endpoints_merchant ON webhook_endpoints(merchant_id);

-- Which endpoint a delivery goes to (NULL: the primary webhook_url) and which event it carries
-- (for the primary endpoint the log's id is the event's id, as before).
ALTER TABLE webhook_logs ADD COLUMN endpoint_id UUID REFERENCES webhook_endpoints(id);
ALTER TABLE webhook_logs ADD COLUMN event_id UUID;
