-- Capture and release (issue 16): what a capture took, where an unknown outcome stands, and
-- the processor's refusal; when an authorization was given back. Refunds fit in the captured
-- amount when a capture took part of the payment (the CHECK backs the refund guard up).
ALTER TABLE payments
    ADD COLUMN amount_captured            BIGINT,
    ADD COLUMN capture_status             VARCHAR(20)
               CHECK (capture_status IN ('pending', 'success', 'failed')),
    ADD COLUMN capture_error_code         VARCHAR(64),
    ADD COLUMN capture_error_description  TEXT,
    ADD COLUMN released_at                TIMESTAMPTZ,
    ADD CONSTRAINT payments_refund_within_captured CHECK (
        amount_captured IS NULL
        OR (amount_captured > 0 AND amount_captured <= amount
            AND amount_refunded <= amount_captured));

-- A capture or a release whose outcome is not known yet, asked again by a job until the
-- processor knows (the same scheduling columns as payments and refunds, so the janitor
-- rescues them the same way). ``id`` is the payment's id: one operation at a time per payment,
-- and the processor's idempotency key. ``status`` leaves ``pending`` once the outcome is
-- recorded; a later capture after a refusal reuses the row.
CREATE TABLE payment_operations (
    id                   VARCHAR(64)  PRIMARY KEY REFERENCES payments(id),
    merchant_id          UUID         NOT NULL REFERENCES merchants(id),
    operation            VARCHAR(20)  NOT NULL CHECK (operation IN ('capture', 'release')),
    amount               BIGINT       NOT NULL CHECK (amount > 0),
    status               VARCHAR(20)  NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'success', 'failed')),
    error_code           VARCHAR(64),
    error_description    TEXT,
    processor_reference  VARCHAR(255),
    processor_attempts   INTEGER      NOT NULL DEFAULT 0,
    next_check_at        TIMESTAMPTZ  NOT NULL DEFAULT now(),
    locked_until         TIMESTAMPTZ,
    enqueued_at          TIMESTAMPTZ,
    created_at           TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ  NOT NULL DEFAULT now()
);
CREATE INDEX idx_payment_operations_due ON payment_operations(next_check_at)
    WHERE status = 'pending';
