DROP FUNCTION asgi_kit_budget_lease(text, text, bigint, bigint, bigint, double precision, date);
DROP TABLE budget_leases;
