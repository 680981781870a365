-- API keys: several live keys per merchant, secrets stored only as keyed hashes.
-- secret_hash is HMAC-SHA256 (hex) of the secret under a key derived from PAYGATE_SECRET_KEY
-- (paygate/services/keys.py, label "api-secret"): the database alone cannot check or recover
-- a secret. SQL cannot compute that HMAC, so this migration moves each merchant's plaintext
-- secret into legacy_secret; the first start-up (wiring.prepare_database) hashes every such row
-- and clears the plaintext, and a row that still has one when it is used is hashed then.
-- merchants.api_key stays: it is the merchant's current (newest) key, what the dashboard and
-- GET /api/v1/test/merchant show.
CREATE TABLE api_keys (
    id             UUID         PRIMARY KEY,
    merchant_id    UUID         NOT NULL REFERENCES merchants(id) ON DELETE CASCADE,
    api_key        VARCHAR(64)  NOT NULL UNIQUE,
    secret_hash    CHAR(64),
    legacy_secret  VARCHAR(64),
    created_at     TIMESTAMPTZ  NOT NULL DEFAULT now(),
    -- Written at most once a minute per key (services/merchants.py), not on every request.
    last_used_at   TIMESTAMPTZ,
    -- Set by a rotation: the key keeps working until then (the overlap).
    expires_at     TIMESTAMPTZ,
    revoked_at     TIMESTAMPTZ,
    CONSTRAINT api_keys_secret_present CHECK (secret_hash IS NOT NULL OR legacy_secret IS NOT NULL)
);
CREATE INDEX idx_api_keys_merchant ON api_keys(merchant_id, created_at DESC);
CREATE INDEX idx_api_keys_legacy ON api_keys(id) WHERE legacy_secret IS NOT NULL;

INSERT INTO api_keys (id, merchant_id, api_key, legacy_secret, created_at)
SELECT gen_random_uuid(), id, api_key, api_secret, created_at FROM merchants;

ALTER TABLE merchants DROP COLUMN api_secret;
