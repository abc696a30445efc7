-- Token usage, one row per recorded call; indexed for per-organization monthly queries.
-- depends: 0001_organizations_users

CREATE TABLE usage (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id text,
    api_key_id text,
    model text NOT NULL,
    prompt_tokens bigint NOT NULL CHECK (prompt_tokens >= 0),
    completion_tokens bigint NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX usage_org_id_created_at_idx ON usage (org_id, created_at);
