-- PostgreSQL twin of ../sqlite/0001_initial.sql: the same schema, with BYTEA for
-- BLOB and BIGINT for INTEGER (every integer is an i64 in Rust).
-- Installation settings (pepper, wrapped platform CA key, bootstrap markers).
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE orgs (
    id         TEXT PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    posture    TEXT NOT NULL DEFAULT 'active',
    created_at TEXT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    created_at    TEXT NOT NULL
);

CREATE TABLE memberships (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    user_id     TEXT NOT NULL REFERENCES users(id),
    role        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (org_id, user_id)
);

CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES orgs(id),
    label          TEXT NOT NULL,
    prefix         TEXT NOT NULL,
    secret_hash    TEXT NOT NULL UNIQUE,
    permission_set TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    last_used_at   TEXT,
    expires_at     TEXT,
    revoked_at     TEXT
);

-- Configuration resources are stored as their API document (`doc`, JSON) plus
-- the columns that queries select on.
CREATE TABLE providers (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    name        TEXT NOT NULL,
    doc         TEXT NOT NULL,
    archived_at TEXT,
    UNIQUE (org_id, name)
);

CREATE TABLE agent_roles (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    name        TEXT NOT NULL,
    doc         TEXT NOT NULL,
    archived_at TEXT,
    UNIQUE (org_id, name)
);

CREATE TABLE credentials (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    name       TEXT NOT NULL,
    user_id    TEXT,
    doc        TEXT NOT NULL
);
CREATE UNIQUE INDEX credentials_org_name ON credentials (org_id, name) WHERE user_id IS NULL;

-- Encrypted secret values (envelope encryption; see secrets.rs).
CREATE TABLE secret_values (
    ref         TEXT PRIMARY KEY,
    wrapped_key BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE workspaces (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs(id),
    role_id         TEXT NOT NULL,
    status          TEXT NOT NULL,
    sandbox_uid     BIGINT NOT NULL UNIQUE,
    agent_event_seq BIGINT NOT NULL DEFAULT 0,
    doc             TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX workspaces_org ON workspaces (org_id, created_at);

CREATE TABLE tasks (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    status       TEXT NOT NULL,
    doc          TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX tasks_workspace ON tasks (workspace_id, created_at, id);

-- `position` is the commit order (SQLite's rowid plays this part there):
-- writers of audit rows lock the table until they commit (see audit.rs), so
-- positions become visible in increasing order.
CREATE TABLE audit_events (
    position            BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL,
    user_id             TEXT NOT NULL,
    timestamp           TEXT NOT NULL,
    event_type          TEXT NOT NULL,
    category            TEXT NOT NULL,
    actor               TEXT NOT NULL,
    workspace_id        TEXT,
    task_id             TEXT,
    agent_role          TEXT,
    agent_provider      TEXT,
    destination         TEXT,
    method              TEXT,
    path                TEXT,
    decision            TEXT,
    reason              TEXT,
    latency_ms          BIGINT,
    transforms_applied  BIGINT,
    validations_applied BIGINT,
    capability_name     TEXT,
    phase               TEXT,
    policy_type         TEXT,
    debits              TEXT,
    budgets             TEXT,
    ceilings            TEXT,
    minted              TEXT,
    auth_failures       TEXT,
    transforms_failed   TEXT,
    status_code         BIGINT,
    bytes_in            BIGINT,
    bytes_out           BIGINT,
    subject_type        TEXT,
    subject_id          TEXT,
    summary             TEXT,
    detail              TEXT
);
CREATE INDEX audit_org_time ON audit_events (org_id, timestamp, id);
CREATE INDEX audit_workspace_time ON audit_events (workspace_id, timestamp, id);
CREATE INDEX audit_workspace_position ON audit_events (workspace_id, position);
