//! The audit log table: batched inserts and the cursor-paged reader behind
//! `GET /v1/audit` and `GET /v1/workspaces/{id}/audit`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use evershell_core::AuditEvent;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::backend::{Backend, Sql};
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

/// Columns of an audit row as written, in bind order.
const INSERT_COLUMNS: &str = "id, org_id, user_id, timestamp, event_type, category, actor, \
    workspace_id, task_id, agent_role, agent_provider, destination, method, path, decision, \
    reason, latency_ms, transforms_applied, validations_applied, capability_name, phase, \
    policy_type, debits, budgets, ceilings, minted, auth_failures, transforms_failed, \
    status_code, bytes_in, bytes_out, subject_type, subject_id, summary, detail";

/// Rows per INSERT: 35 parameters each stays under SQLite's 32 766 and
/// PostgreSQL's 65 535 bind parameters per statement.
const INSERT_CHUNK: usize = 500;

/// Inserts `rows` in `tx`. Call it as the transaction's last write: it takes
/// the audit lock (see [`Backend::lock_audit_log`]) that orders commits.
pub(crate) async fn insert_rows(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    rows: &[AuditEvent],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    backend.lock_audit_log(tx).await?;
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut sql = Sql::new(format!(
            "INSERT INTO audit_events ({INSERT_COLUMNS}) VALUES "
        ));
        for (i, e) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            push_row(&mut sql, e);
        }
        sql.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Appends `(…)` with the values of `e` in [`INSERT_COLUMNS`] order.
fn push_row<'q>(sql: &mut Sql<'q>, e: &'q AuditEvent) {
    sql.push("(");
    sql.bind(e.id.as_str()).push(", ");
    sql.bind(e.org_id.as_str()).push(", ");
    sql.bind(e.user_id.as_str()).push(", ");
    sql.bind(ts(&e.timestamp)).push(", ");
    sql.bind(e.event_type.as_str()).push(", ");
    sql.bind(e.category.as_str()).push(", ");
    sql.bind(e.actor.as_str()).push(", ");
    for text in [
        &e.workspace_id,
        &e.task_id,
        &e.agent_role,
        &e.agent_provider,
        &e.destination,
        &e.method,
        &e.path,
        &e.decision,
        &e.reason,
    ] {
        sql.bind(text.as_deref()).push(", ");
    }
    sql.bind(e.latency_ms).push(", ");
    sql.bind(e.transforms_applied).push(", ");
    sql.bind(e.validations_applied).push(", ");
    sql.bind(e.capability_name.as_deref()).push(", ");
    sql.bind(e.phase.as_deref()).push(", ");
    sql.bind(e.policy_type.as_deref()).push(", ");
    sql.bind(json(&e.debits)).push(", ");
    sql.bind(json(&e.budgets)).push(", ");
    sql.bind(json(&e.ceilings)).push(", ");
    sql.bind(json(&e.minted)).push(", ");
    sql.bind(json(&e.auth_failures)).push(", ");
    sql.bind(json(&e.transforms_failed)).push(", ");
    sql.bind(e.status_code).push(", ");
    sql.bind(e.bytes_in).push(", ");
    sql.bind(e.bytes_out).push(", ");
    sql.bind(e.subject_type.as_deref()).push(", ");
    sql.bind(e.subject_id.as_deref()).push(", ");
    sql.bind(e.summary.as_deref()).push(", ");
    sql.bind(json(&e.detail)).push(")");
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
        insert_rows(&mut tx, self.backend, rows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One page of rows matching `q`, ordered by `(timestamp, id)`.
    pub async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>> {
        let mut sql = Sql::new("SELECT * FROM audit_events WHERE org_id = ");
        sql.bind(q.org_id.as_str());
        if let Some(ws) = &q.workspace_id {
            sql.push(" AND workspace_id = ").bind(ws.as_str());
        }
        if let Some(user) = &q.user_id {
            sql.push(" AND user_id = ").bind(user.as_str());
        }
        if let Some(category) = &q.category {
            sql.push(" AND category = ").bind(category.as_str());
        }
        if let Some(from) = &q.from {
            sql.push(" AND timestamp >= ").bind(ts(from));
        }
        if let Some(to) = &q.to {
            sql.push(" AND timestamp < ").bind(ts(to));
        }
        for filter in &q.filters {
            push_filter(&mut sql, filter);
        }
        let (cmp, dir) = match q.order {
            Order::Asc => (">", "ASC"),
            Order::Desc => ("<", "DESC"),
        };
        if let Some((at, id)) = &q.after_key {
            sql.push(&format!(" AND (timestamp, id) {cmp} ("));
            sql.bind(ts(at)).push(", ").bind(id.as_str()).push(")");
        }
        sql.push(&format!(" ORDER BY timestamp {dir}, id {dir} LIMIT "));
        sql.bind(i64::from(q.limit));

        let rows = sql.build().fetch_all(&self.pool).await?;
        rows.iter().map(row_to_event).collect()
    }
}

fn push_filter<'q>(sql: &mut Sql<'q>, filter: &'q AuditFilter) {
    // The column name comes from FILTERABLE_COLUMNS, never from input text.
    debug_assert!(FILTERABLE_COLUMNS.contains(&filter.column));
    let column = filter.column;
    match &filter.op {
        FilterOp::Populated => {
            sql.push(&format!(
                " AND {column} IS NOT NULL AND CAST({column} AS TEXT) != ''"
            ));
        }
        FilterOp::In(values) => {
            sql.push(&format!(" AND CAST({column} AS TEXT) IN "));
            sql.bind_list(values.iter().map(String::as_str));
        }
        FilterOp::NotIn(values) => {
            sql.push(&format!(" AND (CAST({column} AS TEXT) NOT IN "));
            sql.bind_list(values.iter().map(String::as_str));
            sql.push(&format!(" OR {column} IS NULL)"));
        }
    }
}

fn row_to_event(row: &AnyRow) -> Result<AuditEvent> {
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

fn from_json<T: serde::de::DeserializeOwned>(row: &AnyRow, column: &str) -> Result<Option<T>> {
    let text: Option<String> = row.try_get(column)?;
    Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
}

impl Store {
    /// The commit position of row `id` of `org_id`. Rows are stamped where
    /// the event happened, so timestamp order differs from the order rows
    /// were committed in; live streams resume by commit position.
    pub async fn audit_position(&self, org_id: &str, id: &str) -> Result<Option<i64>> {
        let position = self.backend.audit_position_column();
        let sql = format!("SELECT {position} FROM audit_events WHERE org_id = $1 AND id = $2");
        let row: Option<(i64,)> = sqlx::query_as(&sql)
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
        let position = self.backend.audit_position_column();
        let sql = format!(
            "SELECT {position} AS commit_position, * FROM audit_events \
             WHERE org_id = $1 AND workspace_id = $2 AND {position} > $3 \
             ORDER BY {position} LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(org_id)
            .bind(workspace_id)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("commit_position")?, row_to_event(row)?)))
            .collect()
    }

    /// The commit position of the newest row (0 when the log is empty).
    pub async fn audit_head(&self) -> Result<i64> {
        let position = self.backend.audit_position_column();
        let sql = format!("SELECT COALESCE(MAX({position}), 0) FROM audit_events");
        let (head,): (i64,) = sqlx::query_as(&sql).fetch_one(&self.pool).await?;
        Ok(head)
    }

    /// The ordering key `(timestamp, id)` of row `id` of `org_id`.
    pub async fn audit_key(
        &self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<(DateTime<Utc>, String)>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT timestamp FROM audit_events WHERE org_id = $1 AND id = $2")
                .bind(org_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(t,)| Ok((parse_ts(&t)?, id.to_string())))
            .transpose()
    }
}
