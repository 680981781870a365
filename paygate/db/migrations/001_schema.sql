-- The whole record: merchants, orders, payments, refunds, the webhook outbox, idempotency keys.
-- Money is BIGINT minor units everywhere. Job rows carry their own scheduling columns
-- (next_check_at / next_retry_at, locked_until, enqueued_at) because the database, not the
-- queue, is what says which work is still to be done.

CREATE TABLE merchants (
    id              UUID PRIMARY KEY,
    name            VARCHAR(255) NOT NULL,
    email           VARCHAR(255) NOT NULL UNIQUE,
    api_key         VARCHAR(64)  NOT NULL UNIQUE,
    api_secret      VARCHAR(64)  NOT NULL,
    webhook_url     TEXT,
    webhook_secret  VARCHAR(128),
    processor       VARCHAR(64)  NOT NULL DEFAULT 'test',
    password_hash   TEXT,
    is_active       BOOLEAN      NOT NULL DEFAULT TRUE,
    created_at      TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ  NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id           VARCHAR(64)  PRIMARY KEY,
    merchant_id  UUID         NOT NULL REFERENCES merchants(id),
    amount       BIGINT       NOT NULL CHECK (amount >= 100),
    currency     VARCHAR(3)   NOT NULL DEFAULT 'INR',
    receipt      VARCHAR(255),
    notes        JSONB        NOT NULL DEFAULT '{}'::jsonb,
    status       VARCHAR(20)  NOT NULL DEFAULT 'created',
    created_at   TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ  NOT NULL DEFAULT now()
);
CREATE INDEX idx_orders_merchant_id ON orders(merchant_id);

CREATE TABLE payments (
    id                   VARCHAR(64)  PRIMARY KEY,
    order_id             VARCHAR(64)  NOT NULL REFERENCES orders(id),
    merchant_id          UUID         NOT NULL REFERENCES merchants(id),
    amount               BIGINT       NOT NULL CHECK (amount > 0),
    currency             VARCHAR(3)   NOT NULL DEFAULT 'INR',
    method               VARCHAR(20)  NOT NULL,
    status               VARCHAR(20)  NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'success', 'failed')),
    processor            VARCHAR(64)  NOT NULL DEFAULT 'test',
    vpa                  VARCHAR(255),
    card_network         VARCHAR(20),
    card_last4           VARCHAR(4),
    captured             BOOLEAN      NOT NULL DEFAULT FALSE,
    captured_at          TIMESTAMPTZ,
    amount_refunded      BIGINT       NOT NULL DEFAULT 0,
    error_code           VARCHAR(64),
    error_description    TEXT,
    processor_reference  VARCHAR(255),
    processor_attempts   INTEGER      NOT NULL DEFAULT 0,
    -- TRUE once the processor acknowledged the charge (answered at all); from then on the
    -- worker asks with sync() instead of charging again.
    charge_acknowledged  BOOLEAN      NOT NULL DEFAULT FALSE,
    next_check_at        TIMESTAMPTZ  NOT NULL DEFAULT now(),
    locked_until         TIMESTAMPTZ,
    enqueued_at          TIMESTAMPTZ,
    settled_at           TIMESTAMPTZ,
    created_at           TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ  NOT NULL DEFAULT now(),
    -- The last line of defence against over-refunding: whatever the code does, the sum of
    -- pending and processed refunds can never exceed what was paid.
    CONSTRAINT payments_refund_within_amount CHECK (amount_refunded >= 0 AND amount_refunded <= amount)
);
CREATE INDEX idx_payments_order_id ON payments(order_id);
CREATE INDEX idx_payments_status ON payments(status);
CREATE INDEX idx_payments_merchant_created ON payments(merchant_id, created_at DESC, id DESC);
CREATE INDEX idx_payments_due ON payments(next_check_at) WHERE status = 'pending';

CREATE TABLE refunds (
    id                   VARCHAR(64)  PRIMARY KEY,
    payment_id           VARCHAR(64)  NOT NULL REFERENCES payments(id),
    merchant_id          UUID         NOT NULL REFERENCES merchants(id),
    amount               BIGINT       NOT NULL CHECK (amount > 0),
    reason               TEXT,
    status               VARCHAR(20)  NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'processed', 'failed')),
    error_code           VARCHAR(64),
    error_description    TEXT,
    processor_reference  VARCHAR(255),
    processor_attempts   INTEGER      NOT NULL DEFAULT 0,
    next_check_at        TIMESTAMPTZ  NOT NULL DEFAULT now(),
    locked_until         TIMESTAMPTZ,
    enqueued_at          TIMESTAMPTZ,
    created_at           TIMESTAMPTZ  NOT NULL DEFAULT now(),
    processed_at         TIMESTAMPTZ,
    updated_at           TIMESTAMPTZ  NOT NULL DEFAULT now()
);
CREATE INDEX idx_refunds_payment_id ON refunds(payment_id);
CREATE INDEX idx_refunds_merchant_created ON refunds(merchant_id, created_at DESC, id DESC);
CREATE INDEX idx_refunds_due ON refunds(next_check_at) WHERE status = 'pending';

CREATE TABLE webhook_logs (
    id               UUID         PRIMARY KEY,
    merchant_id      UUID         NOT NULL REFERENCES merchants(id),
    event            VARCHAR(50)  NOT NULL,
    resource_id      VARCHAR(64),
    payload          JSONB        NOT NULL,
    -- The exact bytes sent and signed on every attempt (payload is the same document, as JSONB
    -- for querying; JSONB does not keep key order, so it cannot be the thing we sign).
    body             TEXT         NOT NULL,
    status           VARCHAR(20)  NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'success', 'failed')),
    attempts         INTEGER      NOT NULL DEFAULT 0,
    last_attempt_at  TIMESTAMPTZ,
    next_retry_at    TIMESTAMPTZ,
    response_code    INTEGER,
    response_body    TEXT,
    locked_until     TIMESTAMPTZ,
    enqueued_at      TIMESTAMPTZ,
    created_at       TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ  NOT NULL DEFAULT now()
);
CREATE INDEX idx_webhook_logs_merchant_id ON webhook_logs(merchant_id);
CREATE INDEX idx_webhook_logs_status ON webhook_logs(status);
CREATE INDEX idx_webhook_logs_merchant_created ON webhook_logs(merchant_id, created_at DESC, id DESC);
CREATE INDEX idx_webhook_logs_next_retry_at ON webhook_logs(next_retry_at) WHERE status = 'pending';

-- Every attempt of every delivery, for the dashboard's delivery detail.
CREATE TABLE webhook_attempts (
    id              BIGSERIAL    PRIMARY KEY,
    webhook_log_id  UUID         NOT NULL REFERENCES webhook_logs(id) ON DELETE CASCADE,
    attempt         INTEGER      NOT NULL,
    url             TEXT         NOT NULL,
    response_code   INTEGER,
    response_body   TEXT,
    error           TEXT,
    duration_ms     INTEGER,
    attempted_at    TIMESTAMPTZ  NOT NULL DEFAULT now()
);
CREATE INDEX idx_webhook_attempts_log ON webhook_attempts(webhook_log_id, attempt);

CREATE TABLE idempotency_keys (
    merchant_id     UUID          NOT NULL REFERENCES merchants(id),
    key             VARCHAR(255)  NOT NULL,
    request_hash    VARCHAR(64)   NOT NULL,
    status          VARCHAR(20)   NOT NULL DEFAULT 'in_flight'
                    CHECK (status IN ('in_flight', 'complete')),
    response_code   INTEGER,
    response_body   BYTEA,
    created_at      TIMESTAMPTZ   NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ   NOT NULL DEFAULT now() + interval '24 hours',
    PRIMARY KEY (merchant_id, key)
);
CREATE INDEX idx_idempotency_keys_expires_at ON idempotency_keys(expires_at);
