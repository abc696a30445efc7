-- The usage ledger's idempotency key: a record replayed from a spool (after an outage or a
-- crash) carries the request id it was settled under, and the unique index makes the second
-- insert a no-op. Rows recorded before the ledger keep NULL (not unique-checked).
-- depends: 0003_usage

ALTER TABLE usage ADD COLUMN request_id text;
CREATE UNIQUE INDEX usage_request_id_key ON usage (request_id);
