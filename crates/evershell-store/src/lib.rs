//! Evershell's persistence. One relational database holds all state and the
//! audit log: SQLite for the embedded deployment (this crate today).
//! Configuration resources are kept as their API document (JSON) next to the
//! columns queries select on, so a new optional field needs no migration.
#![forbid(unsafe_code)]

mod audit;
pub mod docs;
mod identity;
mod named_secrets;
pub mod secrets;
mod settings;
mod workspaces;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use audit::{AuditFilter, AuditQuery, FilterOp, Order, FILTERABLE_COLUMNS};
pub use docs::DocTable;
pub use identity::{ApiKeyAuth, NewApiKey};
pub use named_secrets::SecretMeta;
pub use workspaces::{AgentEventBatch, WorkspaceRuntimeRow};

/// A store failure. `NotFound` and `Conflict` are expected outcomes callers
/// map to API errors; the rest are internal.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored document is not valid json: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("secret store: {0}")]
    Crypto(String),
}

impl StoreError {
    /// Whether the failure is a uniqueness violation (a name already taken).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => e.is_unique_violation(),
            StoreError::Conflict(_) => true,
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and applies
    /// pending migrations. WAL mode with `synchronous=NORMAL` keeps every
    /// committed transaction across a process crash (SIGKILL); only a power
    /// loss can drop the last commits.
    ///
    /// A new database file is created `0600`; SQLite gives its `-wal` and
    /// `-shm` files the same mode.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path);
            if let Err(e) = created {
                if e.kind() != std::io::ErrorKind::AlreadyExists {
                    return Err(StoreError::Database(sqlx::Error::Io(e)));
                }
            }
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Timestamps are stored as RFC 3339 UTC with microseconds, which sorts
/// lexicographically in time order.
pub(crate) fn ts(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub(crate) fn parse_ts(text: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| StoreError::Crypto(format!("bad timestamp {text:?}: {e}")))
}
