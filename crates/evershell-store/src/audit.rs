//! The audit log table: batched inserts and the cursor-paged reader behind
//! `GET /v1/audit` and `GET /v1/workspaces/{id}/audit`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use evershell_core::AuditEvent;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};

use crate::{parse_ts, ts, Result, Store};

/// Every scalar column a reader may filter on.
pub const FILTERABLE_COLUMNS: &[&str] = &[
    "id",
    "org_id",
    "user_id",
    "event_type",
    "category",
    "actor",
    "workspace_id",
    "task_id",
    "agent_role",
    "agent_provider",
    "destination",
    "method",
    "path",
    "decision",
    "reason",
    "latency_ms",
    "transforms_applied",
    "validations_applied",
    "capability_name",
    "phase",
    "policy_type",
    "status_code",
    "bytes_in",
    "bytes_out",
    "subject_type",
    "subject_id",
];

/// `col=a,b` (in), `col!=a,b` (not in), `col!=` (populated).
#[derive(Debug, Clone, PartialEq)]
pub enum FilterOp {
    In(Vec<String>),
    NotIn(Vec<String>),
    Populated,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditFilter {
    /// One of [`FILTERABLE_COLUMNS`]; the reader validates it.
    pub column: &'static str,
    pub op: FilterOp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// A page request over the audit log of one org.
#[derive(Debug, Clone)]
pub struct AuditQuery {
    pub org_id: String,
    pub workspace_id: Option<String>,
    /// `:own` narrowing: only rows whose `user_id` is this.
    pub user_id: Option<String>,
    pub category: Option<String>,
    pub filters: Vec<AuditFilter>,
    /// Inclusive lower bound.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound.
    pub to: Option<DateTime<Utc>>,
    pub order: Order,
    pub limit: u32,
    /// Continue strictly after this `(timestamp, id)` key in `order`.
    pub after_key: Option<(DateTime<Utc>, String)>,
}

pub(crate) async fn insert_rows(
    tx: &mut Transaction<'_, Sqlite>,
    rows: &[AuditEvent],
) -> Result<()> {
    for chunk in rows.chunks(500) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO audit_events (id, org_id, user_id, timestamp, event_type, category, actor, \
             workspace_id, task_id, agent_role, agent_provider, destination, method, path, decision, \
             reason, latency_ms, transforms_applied, validations_applied, capability_name, phase, \
             policy_type, debits, budgets, ceilings, minted, auth_failures, transforms_failed, \
             status_code, bytes_in, bytes_out, subject_type, subject_id, summary, detail) ",
        );
        qb.push_values(chunk, |mut b, e| {
            b.push_bind(&e.id)
                .push_bind(&e.org_id)
                .push_bind(&e.user_id)
                .push_bind(ts(&e.timestamp))
                .push_bind(&e.event_type)
                .push_bind(&e.category)
                .push_bind(&e.actor)
                .push_bind(&e.workspace_id)
                .push_bind(&e.task_id)
                .push_bind(&e.agent_role)
                .push_bind(&e.agent_provider)
                .push_bind(&e.destination)
                .push_bind(&e.method)
                .push_bind(&e.path)
                .push_bind(&e.decision)
                .push_bind(&e.reason)
                .push_bind(e.latency_ms)
                .push_bind(e.transforms_applied)
                .push_bind(e.validations_applied)
                .push_bind(&e.capability_name)
                .push_bind(&e.phase)
                .push_bind(&e.policy_type)
                .push_bind(json(&e.debits))
                .push_bind(json(&e.budgets))
                .push_bind(json(&e.ceilings))
                .push_bind(json(&e.minted))
                .push_bind(json(&e.auth_failures))
                .push_bind(json(&e.transforms_failed))
                .push_bind(e.status_code)
                .push_bind(e.bytes_in)
                .push_bind(e.bytes_out)
                .push_bind(&e.subject_type)
                .push_bind(&e.subject_id)
                .push_bind(&e.summary)
                .push_bind(json(&e.detail));
        });
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}

fn json<T: serde::Serialize>(value: &Option<T>) -> Option<String> {
    value
        .as_ref()
        .map(|v| serde_json::to_string(v).expect("audit maps serialise"))
}

impl Store {
    /// Commits `rows` in one transaction.
    pub async fn insert_audit(&self, rows: &[AuditEvent]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_rows(&mut tx, rows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One page of rows matching `q`, ordered by `(timestamp, id)`.
    pub async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>> {
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT * FROM audit_events WHERE org_id = ");
        qb.push_bind(&q.org_id);
        if let Some(ws) = &q.workspace_id {
            qb.push(" AND workspace_id = ").push_bind(ws);
        }
        if let Some(user) = &q.user_id {
            qb.push(" AND user_id = ").push_bind(user);
        }
        if let Some(category) = &q.category {
            qb.push(" AND category = ").push_bind(category);
        }
        if let Some(from) = &q.from {
            qb.push(" AND timestamp >= ").push_bind(ts(from));
        }
        if let Some(to) = &q.to {
            qb.push(" AND timestamp < ").push_bind(ts(to));
        }
        for filter in &q.filters {
            push_filter(&mut qb, filter);
        }
        let (cmp, dir) = match q.order {
            Order::Asc => (">", "ASC"),
            Order::Desc => ("<", "DESC"),
        };
        if let Some((at, id)) = &q.after_key {
            qb.push(format!(" AND (timestamp, id) {cmp} ("));
            qb.push_bind(ts(at)).push(", ").push_bind(id).push(")");
        }
        qb.push(format!(" ORDER BY timestamp {dir}, id {dir} LIMIT "));
        qb.push_bind(i64::from(q.limit));

        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(row_to_event).collect()
    }
}

fn push_filter(qb: &mut QueryBuilder<'_, Sqlite>, filter: &AuditFilter) {
    // The column name comes from FILTERABLE_COLUMNS, never from input text.
    debug_assert!(FILTERABLE_COLUMNS.contains(&filter.column));
    let column = filter.column;
    match &filter.op {
        FilterOp::Populated => {
            qb.push(format!(
                " AND {column} IS NOT NULL AND CAST({column} AS TEXT) != ''"
            ));
        }
        FilterOp::In(values) | FilterOp::NotIn(values) => {
            let negate = matches!(filter.op, FilterOp::NotIn(_));
            let prefix = if negate { "(" } else { "" };
            qb.push(format!(" AND {prefix}CAST({column} AS TEXT) "));
            qb.push(if negate { "NOT IN (" } else { "IN (" });
            let mut list = qb.separated(", ");
            for value in values {
                list.push_bind(value.clone());
            }
            list.push_unseparated(")");
            if negate {
                qb.push(format!(" OR {column} IS NULL)"));
            }
        }
    }
}

fn row_to_event(row: &SqliteRow) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        user_id: row.try_get("user_id")?,
        timestamp: parse_ts(&row.try_get::<String, _>("timestamp")?)?,
        event_type: row.try_get("event_type")?,
        category: row.try_get("category")?,
        actor: row.try_get("actor")?,
        workspace_id: row.try_get("workspace_id")?,
        task_id: row.try_get("task_id")?,
        agent_role: row.try_get("agent_role")?,
        agent_provider: row.try_get("agent_provider")?,
        destination: row.try_get("destination")?,
        method: row.try_get("method")?,
        path: row.try_get("path")?,
        decision: row.try_get("decision")?,
        reason: row.try_get("reason")?,
        latency_ms: row.try_get("latency_ms")?,
        transforms_applied: row.try_get("transforms_applied")?,
        validations_applied: row.try_get("validations_applied")?,
        capability_name: row.try_get("capability_name")?,
        phase: row.try_get("phase")?,
        policy_type: row.try_get("policy_type")?,
        debits: from_json::<BTreeMap<String, i64>>(row, "debits")?,
        budgets: from_json(row, "budgets")?,
        ceilings: from_json(row, "ceilings")?,
        minted: from_json(row, "minted")?,
        auth_failures: from_json(row, "auth_failures")?,
        transforms_failed: from_json(row, "transforms_failed")?,
        status_code: row.try_get("status_code")?,
        bytes_in: row.try_get("bytes_in")?,
        bytes_out: row.try_get("bytes_out")?,
        subject_type: row.try_get("subject_type")?,
        subject_id: row.try_get("subject_id")?,
        summary: row.try_get("summary")?,
        detail: from_json(row, "detail")?,
    })
}

fn from_json<T: serde::de::DeserializeOwned>(row: &SqliteRow, column: &str) -> Result<Option<T>> {
    let text: Option<String> = row.try_get(column)?;
    Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
}

impl Store {
    /// The commit position of row `id` of `org_id`. Rows are stamped where
    /// the event happened, so timestamp order differs from the order rows
    /// were committed in; live streams resume by commit position.
    pub async fn audit_position(&self, org_id: &str, id: &str) -> Result<Option<i64>> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT rowid FROM audit_events WHERE org_id = ? AND id = ?")
                .bind(org_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(p,)| p))
    }

    /// Rows of workspace `workspace_id` committed after position `after`,
    /// in commit order, with their positions.
    pub async fn audit_committed_after(
        &self,
        org_id: &str,
        workspace_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, AuditEvent)>> {
        let rows = sqlx::query(
            "SELECT rowid AS position, * FROM audit_events WHERE org_id = ? AND workspace_id = ? AND rowid > ? \
             ORDER BY rowid LIMIT ?",
        )
        .bind(org_id)
        .bind(workspace_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("position")?, row_to_event(row)?)))
            .collect()
    }

    /// The commit position of the newest row (0 when the log is empty).
    pub async fn audit_head(&self) -> Result<i64> {
        let (head,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(rowid), 0) FROM audit_events")
            .fetch_one(&self.pool)
            .await?;
        Ok(head)
    }

    /// The ordering key `(timestamp, id)` of row `id` of `org_id`.
    pub async fn audit_key(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<(DateTime<Utc>, String)>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT timestamp FROM audit_events WHERE org_id = ? AND id = ?")
                .bind(org_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(t,)| Ok((parse_ts(&t)?, id.to_string())))
            .transpose()
    }
}
