-- Issue 18. Tokens of the transparency API (`fairness-pipeline api token create|list|revoke`). A token is shown once,
-- when it is created; only its SHA-256 digest is stored, so the table holds nothing that authenticates. A token reads
-- one tenant (tenant_id) or, when tenant_id is NULL, every tenant (an operator token); role 'review' may also request,
-- acknowledge and resolve reviews. Revoking sets revoked_at; rows are kept so that the review history's actors stay
-- traceable to a token.
CREATE TABLE api_tokens (
    id              BIGSERIAL PRIMARY KEY,
    token_sha256    BYTEA NOT NULL CHECK (octet_length(token_sha256) = 32),
    name            TEXT NOT NULL CHECK (name <> '' AND length(name) <= 200),
    tenant_id       VARCHAR(255) CHECK (tenant_id <> ''),
    role            TEXT NOT NULL CHECK (role IN ('read', 'review')),
    created_at      TIMESTAMPTZ NOT NULL,
    revoked_at      TIMESTAMPTZ,
    CONSTRAINT api_tokens_digest UNIQUE (token_sha256)
);

COMMENT ON TABLE api_tokens IS 'Transparency API tokens: SHA-256 digests only (the token is shown once)';
COMMENT ON COLUMN api_tokens.tenant_id IS 'The one tenant the token reads; NULL for an operator token (all tenants)';
COMMENT ON COLUMN api_tokens.name IS 'Who holds the token: recorded as the reviewer of the changes it makes';
