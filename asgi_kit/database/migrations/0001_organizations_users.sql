-- Organizations (with their monthly token budget) and their users.
-- depends:

CREATE TABLE organizations (
    id text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    display_name text NOT NULL,
    budget_tokens_monthly bigint CHECK (budget_tokens_monthly >= 0),
    tokens_used_current_month bigint NOT NULL DEFAULT 0 CHECK (tokens_used_current_month >= 0),
    -- first day (UTC) of the month tokens_used_current_month counts; older means "0 used this month"
    budget_period_start date NOT NULL DEFAULT (date_trunc('month', now() AT TIME ZONE 'UTC'))::date,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email text NOT NULL,
    role text NOT NULL,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_org_id_idx ON users (org_id);
