-- API keys: looked up by public key id; only the hash of the secret is stored.
-- depends: 0001_organizations_users

CREATE TABLE api_keys (
    id text PRIMARY KEY,
    org_id text REFERENCES organizations (id) ON DELETE CASCADE,
    user_id text REFERENCES users (id) ON DELETE SET NULL,
    name text NOT NULL DEFAULT '',
    key_hash text NOT NULL,
    pepper_version integer NOT NULL DEFAULT 0 CHECK (pepper_version >= 0),
    role text NOT NULL DEFAULT 'org_user',
    scopes text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz
);

CREATE INDEX api_keys_org_id_idx ON api_keys (org_id);
