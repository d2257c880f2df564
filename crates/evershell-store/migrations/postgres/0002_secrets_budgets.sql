-- PostgreSQL twin of ../sqlite/0002_secrets_budgets.sql: the same schema, with BYTEA for
-- BLOB and BIGINT for INTEGER (every integer is an i64 in Rust).
-- Named org secrets referenced by transforms as secrets["name"]; the value
-- lives encrypted in secret_values under value_ref.
CREATE TABLE secrets (
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    name       TEXT NOT NULL,
    value_ref  TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (org_id, name)
);

-- `per: workspace` budget counters, kept across sandbox restarts.
CREATE TABLE budget_counters (
    workspace_id TEXT NOT NULL,
    capability   TEXT NOT NULL,
    counter      TEXT NOT NULL,
    used         BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, capability, counter)
);
