-- The merchant dashboard (:3000).
-- dashboard_secrets keeps the key that signs staff sessions and CSRF tokens when
-- PAYGATE_SECRET_KEY is unset: generated once by whichever process needs it first, so every
-- gunicorn process and every restart signs with the same key.
CREATE TABLE dashboard_secrets (
    name        VARCHAR(64)  PRIMARY KEY,
    value       TEXT         NOT NULL,
    created_at  TIMESTAMPTZ  NOT NULL DEFAULT now()
);

-- A payment's detail page lists the deliveries of its events (and of its refunds' events).
CREATE INDEX idx_webhook_logs_merchant_resource ON webhook_logs(merchant_id, resource_id);

-- Failed sign-ins per email (lower-cased) in the current window: past the limit, sign-in for
-- that email is refused for the rest of the window without checking the password.
CREATE TABLE dashboard_sign_in_failures (
    email         VARCHAR(255) PRIMARY KEY,
    failures      INTEGER      NOT NULL,
    window_start  TIMESTAMPTZ  NOT NULL DEFAULT now()
);
CREATE INDEX idx_dashboard_sign_in_failures_window ON dashboard_sign_in_failures(window_start);
