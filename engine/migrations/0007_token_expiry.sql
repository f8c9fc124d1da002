-- Config API tokens may expire: NULL keeps one valid until it is revoked.
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
