-- Dashboard sessions end after PAYGATE_SESSION_IDLE_MINUTES without use, on top of their
-- 12-hour absolute limit: each page a session opens moves last_seen_at.
ALTER TABLE dashboard_sessions ADD COLUMN last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now();
