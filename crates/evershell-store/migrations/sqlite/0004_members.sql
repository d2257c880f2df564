-- Who invited a member and when they accepted. Members an installation
-- admin created directly have neither.
ALTER TABLE memberships ADD COLUMN invited_by TEXT;
ALTER TABLE memberships ADD COLUMN accepted_at TEXT;

-- Invitations to join an org. Only a hash of the single-use token is kept.
-- `id` (`mem_…`) becomes the membership's id when the invitation is
-- accepted, so the pending row and the member it turns into share an id.
CREATE TABLE invitations (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    email       TEXT NOT NULL,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    invited_by  TEXT NOT NULL,
    invited_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    accepted_at TEXT,
    revoked_at  TEXT
);
CREATE INDEX invitations_org_email ON invitations (org_id, email);
