-- Abuse limits (issue 15): one table of counting windows shared by every limit (public payment
-- creation per order, client and merchant; dashboard sign-in per client, account and both).
-- A bucket is "<kind>:<keyed hash of what is counted>", so neither client addresses nor emails
-- are stored. One upsert counts a hit and answers the count (paygate/db/limits.py): parallel
-- requests cannot slip past a limit. A window that ended over its limit makes the next one
-- twice as long, up to 2^max_strikes times (growing back-off). Rows whose window ended a day
-- ago are pruned now and then. A merchant's buckets go with the merchant.
CREATE TABLE rate_limits (
    bucket          VARCHAR(128)     PRIMARY KEY,
    merchant_id     UUID             REFERENCES merchants(id) ON DELETE CASCADE,
    hits            INTEGER          NOT NULL,
    max_hits        INTEGER          NOT NULL,
    window_seconds  DOUBLE PRECISION NOT NULL,
    strikes         INTEGER          NOT NULL DEFAULT 0,
    max_strikes     INTEGER          NOT NULL DEFAULT 0,
    window_end      TIMESTAMPTZ      NOT NULL
);
CREATE INDEX idx_rate_limits_window_end ON rate_limits(window_end);

-- The per-email sign-in failure count it replaces (a known email could be locked out by anyone).
DROP TABLE dashboard_sign_in_failures;

-- Payments created through the public (checkout) endpoint. A buyer has at most one pending at
-- a time per order (the index makes a second, concurrent one fail), and such a payment that
-- succeeds on an order another payment already paid is refunded automatically.
ALTER TABLE payments ADD COLUMN checkout BOOLEAN NOT NULL DEFAULT FALSE;
CREATE UNIQUE INDEX idx_payments_one_pending_checkout ON payments(order_id)
    WHERE status = 'pending' AND checkout;
