-- PostgreSQL twin of ../sqlite/0003_oidc.sql: the same schema.
-- OpenID Connect sign-in. A flow in progress: the server-side half of the
-- `state` a browser carries to the identity provider and back. Rows are
-- keyed by the SHA-256 of the state (the state itself never rests here),
-- used once, and refused after `expires_at`.
CREATE TABLE oidc_flows (
    state_hash TEXT PRIMARY KEY,
    org_slug   TEXT,
    return_to  TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    verifier   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX oidc_flows_expiry ON oidc_flows (expires_at);

-- The provider account (issuer and subject) a user signed in with; a user
-- has at most one subject per issuer.
CREATE TABLE oidc_identities (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    PRIMARY KEY (issuer, subject),
    UNIQUE (issuer, user_id)
);
