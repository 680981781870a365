-- Issue 17, several webhook endpoints: a rotation's overlap (the replaced secret keeps signing
-- until previous_secret_until, like merchants.previous_webhook_secret) and soft deletion (a
-- deleted endpoint keeps its row, so its delivery logs keep their endpoint_id and URL).
ALTER TABLE webhook_endpoints ADD COLUMN previous_secret_sealed TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN previous_secret_until TIMESTAMPTZ;
ALTER TABLE webhook_endpoints ADD COLUMN deleted_at TIMESTAMPTZ;
CREATE INDEX idx_webhook_logs_endpoint ON webhook_logs(endpoint_id) WHERE endpoint_id IS NOT NULL;
