DROP TABLE used_refresh_tokens;
DROP TABLE revoked_tokens;
DROP TABLE refresh_token_families;
