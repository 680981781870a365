-- Issue 17: each event observer's bookkeeping. One row per observer name: how far it has read
-- the event log (``(position_txid, position)``: the ``(events.txid, events.seq)`` of the last
-- event it took; paygate/db/events.py says why the log is read in that order), its retries, and
-- which worker holds it (one consumer per observer at a time, across worker processes).
CREATE TABLE observer_positions (
    observer         VARCHAR(100) PRIMARY KEY,
    position_txid    XID8         NOT NULL,
    position         BIGINT       NOT NULL,
    attempts         INTEGER      NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ  NOT NULL DEFAULT now(),
    last_error       TEXT,
    last_error_at    TIMESTAMPTZ,
    failing_event_id UUID,
    delivered        BIGINT       NOT NULL DEFAULT 0,
    leased_by        VARCHAR(200),
    leased_until     TIMESTAMPTZ,
    created_at       TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ  NOT NULL DEFAULT now()
);

-- The order observers read the log in.
CREATE INDEX idx_events_txid_seq ON events(txid, seq);
