-- Per-merchant processor settings (issue 16): one row per merchant and processor, the values
-- sealed as one JSON document with AES-256-GCM under the key named by key_id (a key of
-- PAYGATE_ENCRYPTION_KEYS, or 'master': the key derived from PAYGATE_SECRET_KEY), the merchant
-- id and the processor name as associated data: 'v1:' + base64(nonce || ciphertext || tag).
-- No key is ever stored here; `paygate processors reseal` rewrites rows under the first key.
CREATE TABLE processor_configs (
    merchant_id  UUID        NOT NULL REFERENCES merchants (id) ON DELETE CASCADE,
    processor    TEXT        NOT NULL,
    sealed       TEXT        NOT NULL,
    key_id       TEXT        NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by   TEXT        NOT NULL,
    PRIMARY KEY (merchant_id, processor)
);
