DROP INDEX usage_request_id_key;
ALTER TABLE usage DROP COLUMN request_id;
