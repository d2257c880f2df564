//! Evershell's persistence. One relational database holds all state and the
//! audit log: SQLite for the embedded deployment, PostgreSQL for the fleet
//! (several control-plane replicas). Configuration resources are kept as
//! their API document (JSON) next to the columns queries select on, so a new
//! optional field needs no migration.
//!
//! # One store, two engines
//!
//! Every query is written once and runs through sqlx's `Any` driver, which
//! hands the SQL text unchanged to the engine behind the URL. That works
//! because the store sticks to SQL both engines accept: numbered `$n`
//! placeholders (SQLite reads `$n` as the n-th argument, as PostgreSQL
//! does), `ON CONFLICT … DO UPDATE/NOTHING`, row-value comparisons,
//! `CAST(x AS TEXT)`, TEXT timestamps, and only `i64`, `String` and bytes as
//! values (the types `Any` carries). A generic store over `sqlx::Database`
//! would have needed trait bounds on every method for the same SQL; the
//! differences that remain are few and live in one place, `backend`:
//! connection setup (SQLite pragmas), one migration folder per engine, the
//! audit commit position (`rowid` versus an identity column made
//! commit-ordered by a table lock) and write serialisation.
#![forbid(unsafe_code)]

mod audit;
mod backend;
pub mod docs;
mod identity;
pub mod members;
mod named_secrets;
mod oidc;
pub mod secrets;
mod settings;
mod workspaces;

use std::path::Path;

use sqlx::AnyPool;

use crate::backend::{Backend, Location};

pub use audit::{AuditFilter, AuditQuery, FilterOp, Order, FILTERABLE_COLUMNS};
pub use docs::{DocTable, DocUpdate};
pub use identity::{ApiKeyAuth, ApiKeyMeta, MembershipView, NewApiKey, UserLogin};
pub use members::{Joined, MemberError, MemberRecord, MemberTarget, NewInvitation};
pub use named_secrets::{NewSecret, SecretMeta};
pub use oidc::{OidcFlow, OidcLink};
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
    #[error("database url {0}: expected sqlite://<path> or postgres://…")]
    Url(String),
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
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens the store at `url` and applies pending migrations:
    /// `sqlite://<path>` opens (creating if needed) a SQLite file as
    /// [`Store::open_sqlite`] does; `postgres://…` (or `postgresql://…`)
    /// connects to an existing PostgreSQL database. Any other URL is
    /// [`StoreError::Url`].
    pub async fn open(url: &str) -> Result<Store> {
        match Location::parse(url)? {
            Location::Sqlite(path) => Store::open_sqlite(path).await,
            Location::Postgres(url) => Store::connect(Backend::Postgres, url).await,
        }
    }

    /// Opens (creating if needed) the SQLite database at `path` and applies
    /// pending migrations. WAL mode with `synchronous=NORMAL` keeps every
    /// committed transaction across a process crash (SIGKILL); only a power
    /// loss can drop the last commits.
    ///
    /// A new database file is created `0600`; SQLite gives its `-wal` and
    /// `-shm` files the same mode.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        let path = std::path::absolute(path).map_err(|e| StoreError::Database(e.into()))?;
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path);
            if let Err(e) = created {
                if e.kind() != std::io::ErrorKind::AlreadyExists {
                    return Err(StoreError::Database(sqlx::Error::Io(e)));
                }
            }
        }
        Store::connect(Backend::Sqlite, &backend::sqlite_url(&path)?).await
    }

    async fn connect(backend: Backend, url: &str) -> Result<Store> {
        let pool = backend.connect(url).await?;
        Ok(Store { pool, backend })
    }

    /// The connection pool, for queries this crate does not offer (tests
    /// inspecting stored bytes, for instance). Write SQL both engines accept.
    pub fn pool(&self) -> &AnyPool {
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
