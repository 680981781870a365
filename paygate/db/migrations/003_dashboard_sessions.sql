-- Staff sessions of the dashboard. The pg_session cookie is a signed token that names a
-- session; this row is what keeps it valid, so signing out ends the session for every copy of
-- the cookie, and a merchant can end all its other sessions. Only a SHA-256 of the session id
-- is stored: someone who reads this table (and the signing key) still cannot make a cookie.
CREATE TABLE dashboard_sessions (
    id_hash      CHAR(64)     PRIMARY KEY,
    merchant_id  UUID         NOT NULL REFERENCES merchants(id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ  NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ  NOT NULL,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX idx_dashboard_sessions_merchant ON dashboard_sessions(merchant_id);
