-- Routing and fallback (issue 17): a merchant's ordered fallback processors (tried, in order,
-- after its processor when one is unavailable before any money moved; empty = none), and on
-- each payment the record of how its processor was chosen and every fallback on the way
-- (candidates, decided_by, reason, attempts): the API's documented `routing` field.
ALTER TABLE merchants ADD COLUMN fallback_processors TEXT[] NOT NULL DEFAULT '{}';
ALTER TABLE payments ADD COLUMN routing JSONB;
