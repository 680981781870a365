-- Webhook secrets are stored sealed (AES-256-GCM under a key derived from PAYGATE_SECRET_KEY,
-- the merchant id as associated data): 'v1:' + base64(nonce || ciphertext || tag). A sealed
-- secret is longer than the plaintext one, so the column becomes TEXT (no table rewrite).
-- Plaintext rows left by older versions are sealed at start-up (paygate.wiring), not here:
-- SQL has no access to the key.
ALTER TABLE merchants ALTER COLUMN webhook_secret TYPE TEXT;

-- Rotation with an overlap: the secret replaced by the last rotation (sealed the same way)
-- keeps signing deliveries, next to the new one, until previous_webhook_secret_until.
ALTER TABLE merchants
    ADD COLUMN previous_webhook_secret        TEXT,
    ADD COLUMN previous_webhook_secret_until  TIMESTAMPTZ;
