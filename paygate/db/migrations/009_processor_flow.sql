-- Processor API v2 (issue 16), core flow.
-- The opaque token a processor's tokenize() gave for the method details at creation (the
-- details themselves are never stored); the worker's charge carries it.
ALTER TABLE payments ADD COLUMN method_token VARCHAR(255);
-- While the buyer must act (3-D Secure, a bank page): where to send them. Cleared at settle.
ALTER TABLE payments ADD COLUMN next_action_url TEXT;

-- Every notification a processor's PSP posted to /api/v1/processors/{name}/callbacks, verified
-- or not, and what it did. Never the raw body (it may carry card data).
CREATE TABLE processor_callbacks (
    id           VARCHAR(64)  PRIMARY KEY,
    processor    VARCHAR(64)  NOT NULL,
    payment_id   VARCHAR(64)  REFERENCES payments(id),
    refund_id    VARCHAR(64)  REFERENCES refunds(id),
    merchant_id  UUID         REFERENCES merchants(id),
    event_id     VARCHAR(255),
    verified     BOOLEAN      NOT NULL DEFAULT FALSE,
    -- success, failed or pending as the processor said (verified only); NULL when refused
    outcome      VARCHAR(20),
    -- whether it changed the record (a final outcome applied, or a next_action updated)
    applied      BOOLEAN      NOT NULL DEFAULT FALSE,
    -- the processor's decline code for an outcome, or why the callback was refused
    error_code   VARCHAR(64),
    reference    VARCHAR(255),
    received_at  TIMESTAMPTZ  NOT NULL DEFAULT now()
);
-- One verified event is recorded once: a PSP's redelivery of it changes nothing. Refused
-- callbacks are not held to it, so a forged one cannot take a genuine event's id first.
CREATE UNIQUE INDEX idx_processor_callbacks_event
    ON processor_callbacks(processor, event_id) WHERE verified AND event_id IS NOT NULL;
CREATE INDEX idx_processor_callbacks_payment ON processor_callbacks(payment_id, received_at);
CREATE INDEX idx_processor_callbacks_refund ON processor_callbacks(refund_id, received_at)
    WHERE refund_id IS NOT NULL;
