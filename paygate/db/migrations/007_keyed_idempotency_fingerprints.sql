-- Idempotency fingerprints used to be unkeyed SHA-256 hashes of the request body, card data
-- included (a CVV and expiry fall to brute force next to the stored network and last four).
-- They are keyed MACs of a redacted body now (services/idempotency.py); the old ones are
-- erased. A key whose fingerprint was erased still replays its stored response, it is only no
-- longer compared with the request (LEGACY_FINGERPRINT).
UPDATE idempotency_keys SET request_hash = 'legacy';
