-- API-key change events: every change to a key row that a verifier caches is announced with
-- pg_notify on the channel asgi_kit_api_keys (payload: the key id; '*' after a TRUNCATE), so
-- every process's key cache hears of it, whoever wrote it (the kit, an admin tool, plain SQL).
-- last_used_at is left out on purpose: it changes on every use and no cache depends on it.
-- Notifications are sent when the writing transaction commits, never for a rolled-back one.
-- depends: 0002_api_keys

CREATE FUNCTION asgi_kit_api_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('asgi_kit_api_keys', '*');
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('asgi_kit_api_keys', OLD.id);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.id IS DISTINCT FROM OLD.id) THEN
        PERFORM pg_notify('asgi_kit_api_keys', NEW.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_changed
    AFTER INSERT OR DELETE
    OR UPDATE OF id, org_id, user_id, role, key_hash, pepper_version, scopes, expires_at, revoked_at
    ON api_keys
    FOR EACH ROW EXECUTE FUNCTION asgi_kit_api_key_changed();

CREATE TRIGGER api_keys_truncated
    AFTER TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION asgi_kit_api_key_changed();
