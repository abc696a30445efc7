-- Refresh-token families, revoked JWT ids and used refresh tokens (reuse detection).
-- Rows may be deleted once expires_at has passed: the token would be refused as expired anyway.
-- depends:

CREATE TABLE refresh_token_families (
    family_id text PRIMARY KEY,
    revoked_at timestamptz,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE revoked_tokens (
    jti text PRIMARY KEY,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX revoked_tokens_expires_at_idx ON revoked_tokens (expires_at);

CREATE TABLE used_refresh_tokens (
    jti text PRIMARY KEY,
    family_id text NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX used_refresh_tokens_expires_at_idx ON used_refresh_tokens (expires_at);
