-- Leases of budget (issue 13): each process reserves calls from a chunk of its organization's
-- budget that it leased here, so the database sees one statement per chunk, not per request.
-- See asgi_kit/database/leases.py and asgi_kit/budget/reservation.py.
-- depends: 0001_organizations_users

CREATE TABLE budget_leases (
    org_id text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- one process: host, pid and a random part
    holder text NOT NULL,
    -- tokens the holder may still spend, or spent without them being in tokens_used_current_month yet
    tokens bigint NOT NULL CHECK (tokens > 0),
    -- a holder that stops renewing (killed, cut off) frees its tokens at this time
    expires_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, holder)
);

-- Set p_holder's lease on p_org_id by the rule of asgi_kit.budget.store.lease_grant, in one call:
-- available = budget - used this period - the other live leases; when p_need fits, grant p_need
-- plus up to (p_want - p_need) more but at most half of what would be left; otherwise keep p_keep.
-- Never below p_keep. No row for an unlimited organization; no row returned for an unknown one.
CREATE FUNCTION asgi_kit_budget_lease(
    p_org_id text, p_holder text, p_keep bigint, p_need bigint, p_want bigint,
    p_ttl double precision, p_period date
) RETURNS TABLE (lease_tokens bigint, lease_limit bigint, lease_used bigint, lease_others bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_limit bigint;
    v_used bigint;
    v_others bigint;
    v_available bigint;
    v_granted bigint;
BEGIN
    -- The organization's row lock serialises grants with each other and with every usage write
    -- (record_usage and the ledger update this row). An older budget_period_start means a new
    -- month began: nothing is used yet this period.
    SELECT o.budget_tokens_monthly,
           CASE WHEN o.budget_period_start >= p_period THEN o.tokens_used_current_month ELSE 0 END
      INTO v_limit, v_used
      FROM organizations AS o WHERE o.id = p_org_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- Each statement below takes a new snapshot (read committed): it sees every lease change
    -- committed before the row lock was ours.
    DELETE FROM budget_leases AS l WHERE l.org_id = p_org_id AND l.expires_at <= clock_timestamp();
    SELECT COALESCE(sum(l.tokens), 0) INTO v_others
      FROM budget_leases AS l WHERE l.org_id = p_org_id AND l.holder <> p_holder;
    IF v_limit IS NULL THEN
        DELETE FROM budget_leases AS l WHERE l.org_id = p_org_id AND l.holder = p_holder;
        RETURN QUERY SELECT p_want, v_limit, v_used, v_others;
        RETURN;
    END IF;
    v_available := v_limit - v_used - v_others;
    IF v_available >= p_need THEN
        v_granted := p_need + LEAST(p_want - p_need, (v_available - p_need) / 2);
    ELSE
        v_granted := p_keep;
    END IF;
    v_granted := GREATEST(v_granted, p_keep);
    IF v_granted > 0 THEN
        INSERT INTO budget_leases AS l (org_id, holder, tokens, expires_at, updated_at)
        VALUES (p_org_id, p_holder, v_granted, clock_timestamp() + make_interval(secs => p_ttl), now())
        ON CONFLICT (org_id, holder) DO UPDATE
            SET tokens = EXCLUDED.tokens, expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at;
    ELSE
        DELETE FROM budget_leases AS l WHERE l.org_id = p_org_id AND l.holder = p_holder;
    END IF;
    RETURN QUERY SELECT v_granted, v_limit, v_used, v_others;
END;
$$;
