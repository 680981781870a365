-- Issue 18, webhook isolation: a circuit breaker per endpoint (the merchant's primary
-- webhook_url is endpoint 'primary', a webhook_endpoints row is its id as text).
-- ``failures``: failed attempts in a row; ``open_seconds``: the length of the last open period
-- (a failed probe doubles it, up to PAYGATE_WEBHOOK_BREAKER_MAX_OPEN); ``retry_at``: while
-- open, when the next delivery goes as the half-open probe; while half-open, when the probe's
-- lease ends (a dead prober's probe ends then, and another delivery may go as the probe).
-- No row: closed, never failed. A row is written only when something changes (a failed
-- attempt, a success after failures, the probe taken), never on a plain success; the claim
-- reads it with the delivery (one statement). ``version`` grows with every change: each change
-- is one statement that applies only to the version it read (no lock held between statements).
-- The per-endpoint concurrency cap is kept in each worker process's memory, not here.
CREATE TABLE webhook_circuits (
    merchant_id   UUID         NOT NULL REFERENCES merchants(id),
    endpoint      TEXT         NOT NULL,
    state         TEXT         NOT NULL DEFAULT 'closed'
                  CHECK (state IN ('closed', 'open', 'half_open')),
    failures      INTEGER      NOT NULL DEFAULT 0,
    open_seconds  FLOAT8,
    retry_at      TIMESTAMPTZ,
    version       BIGINT       NOT NULL DEFAULT 0,
    updated_at    TIMESTAMPTZ  NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, endpoint)
);

-- A delivery put off by its endpoint's breaker or concurrency cap (not an attempt): the end of
-- an attempt on that endpoint can bring it forward at once.
ALTER TABLE webhook_logs ADD COLUMN deferred BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX idx_webhook_logs_deferred ON webhook_logs(merchant_id) WHERE deferred AND status = 'pending';
