//! A backend is the database engine a [`Store`](crate::Store) talks to:
//! SQLite (embedded) or PostgreSQL (fleet). Queries are written once, in the
//! SQL both engines accept, and run through sqlx's `Any` driver; this module
//! holds the few places where they still differ (connection setup,
//! migrations, the audit commit position, write serialisation) and a small
//! builder for queries assembled at run time.

use std::path::Path;

use sqlx::any::{AnyArguments, AnyPoolOptions};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Arguments, Encode, Executor, Transaction, Type};

use crate::{Result, StoreError};

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per pool. SQLite serialises writers anyway; PostgreSQL
/// replicas share the server's connection limit, so stay modest.
const MAX_CONNECTIONS: u32 = 8;

/// How long a SQLite connection waits for the write lock before failing.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

/// Key of the PostgreSQL advisory lock that serialises sandbox uid
/// allocation (an arbitrary constant, unique within this schema).
const SANDBOX_UID_LOCK: i64 = 0x6576_7368_7569_6401;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Connects to `url` (already known to be of this backend) and applies
    /// pending migrations.
    pub(crate) async fn connect(self, url: &str) -> Result<AnyPool> {
        sqlx::any::install_default_drivers();
        let options = AnyPoolOptions::new().max_connections(MAX_CONNECTIONS);
        let pool = match self {
            // journal_mode=WAL persists in the file; the other pragmas are
            // per connection. WAL with synchronous=NORMAL keeps every
            // committed transaction across a process crash (SIGKILL); only a
            // power loss can drop the last commits.
            Backend::Sqlite => {
                options
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            let pragmas = format!(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};"
                            );
                            conn.execute(pragmas.as_str()).await.map(drop)
                        })
                    })
                    .connect(url)
                    .await?
            }
            Backend::Postgres => options.connect(url).await?,
        };
        self.migrator().run(&pool).await?;
        Ok(pool)
    }

    fn migrator(self) -> &'static sqlx::migrate::Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        }
    }

    /// The column holding an audit row's commit position: SQLite's `rowid`
    /// (single writer, so insertion order is commit order), PostgreSQL's
    /// identity column `position` (made commit-ordered by
    /// [`Backend::lock_audit_log`]).
    pub(crate) fn audit_position_column(self) -> &'static str {
        match self {
            Backend::Sqlite => "rowid",
            Backend::Postgres => "position",
        }
    }

    /// Makes the audit rows this transaction inserts next commit in
    /// position order. PostgreSQL hands out identity values at insert time,
    /// so two concurrent writers could commit positions out of order and a
    /// reader tailing by position would skip the late one; an `EXCLUSIVE`
    /// table lock (which still admits readers) held to commit prevents
    /// that. SQLite already admits one writer at a time.
    ///
    /// Take it as the last step before inserting audit rows, after the
    /// transaction's other writes, so lock order stays the same everywhere.
    pub(crate) async fn lock_audit_log(self, tx: &mut Transaction<'_, Any>) -> Result<()> {
        if self == Backend::Postgres {
            sqlx::query("LOCK TABLE audit_events IN EXCLUSIVE MODE")
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Serialises membership changes of one org until this transaction
    /// ends, so two concurrent demotions cannot both see the other owner.
    /// SQLite already admits one writer at a time (take it before the
    /// transaction's first write there too, for the same lock order).
    pub(crate) async fn lock_org(self, tx: &mut Transaction<'_, Any>, org_id: &str) -> Result<()> {
        if self == Backend::Postgres {
            sqlx::query("SELECT id FROM orgs WHERE id = $1 FOR UPDATE")
                .bind(org_id)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Serialises sandbox uid allocation (`MAX + 1`) between concurrent
    /// transactions until this one ends. SQLite already admits one writer
    /// at a time.
    pub(crate) async fn lock_sandbox_uids(self, tx: &mut Transaction<'_, Any>) -> Result<()> {
        if self == Backend::Postgres {
            // The lock function returns `void`, a type the Any driver cannot
            // carry, hence the count around it.
            sqlx::query("SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock($1)) AS l")
                .bind(SANDBOX_UID_LOCK)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// Where a store lives, parsed from its URL.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Location<'a> {
    /// `sqlite://<path>`: the file path, verbatim.
    Sqlite(&'a Path),
    /// `postgres://…` or `postgresql://…`: the whole URL.
    Postgres(&'a str),
}

impl<'a> Location<'a> {
    pub(crate) fn parse(url: &'a str) -> Result<Location<'a>> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::Url(redact(url)));
            }
            return Ok(Location::Sqlite(Path::new(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url));
        }
        Err(StoreError::Url(redact(url)))
    }
}

/// `url` without anything between `://` and `@` (a password may be there).
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(start), Some(at)) if at > start => format!("{}://…{}", &url[..start], &url[at..]),
        _ => url.to_string(),
    }
}

/// The `sqlite://` URL of the file at absolute `path`, percent-encoding the
/// bytes a URL would otherwise read as syntax.
pub(crate) fn sqlite_url(path: &Path) -> Result<String> {
    let text = path
        .to_str()
        .ok_or_else(|| StoreError::Url(format!("sqlite://{}", path.display())))?;
    let mut url = String::from("sqlite://");
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                url.push(char::from(byte));
            }
            _ => url.push_str(&format!("%{byte:02X}")),
        }
    }
    url.push_str("?mode=rwc");
    Ok(url)
}

/// A query assembled at run time. [`Sql::bind`] writes numbered `$n`
/// placeholders, which both engines accept (SQLite reads `$n` as the n-th
/// argument); sqlx's own `QueryBuilder` writes `?` under the `Any` driver,
/// which PostgreSQL rejects.
pub(crate) struct Sql<'q> {
    text: String,
    args: AnyArguments<'q>,
}

impl<'q> Sql<'q> {
    pub(crate) fn new(text: impl Into<String>) -> Sql<'q> {
        Sql {
            text: text.into(),
            args: AnyArguments::default(),
        }
    }

    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends the next placeholder and binds `value` to it.
    pub(crate) fn bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'q + Encode<'q, Any> + Type<Any>,
    {
        self.args
            .add(value)
            .expect("strings, integers and bytes always encode for Any");
        let n = self.args.len();
        self.text.push_str(&format!("${n}"));
        self
    }

    /// Appends `values` as a parenthesised, comma-separated placeholder list.
    pub(crate) fn bind_list<T>(&mut self, values: impl IntoIterator<Item = T>) -> &mut Self
    where
        T: 'q + Encode<'q, Any> + Type<Any>,
    {
        self.push("(");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(value);
        }
        self.push(")")
    }

    pub(crate) fn build(&mut self) -> Query<'_, Any, AnyArguments<'_>> {
        sqlx::query_with(self.text.as_str(), std::mem::take(&mut self.args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_name_their_backend() {
        assert_eq!(
            Location::parse("sqlite:///var/lib/evershell/evershell.db").expect("sqlite"),
            Location::Sqlite(Path::new("/var/lib/evershell/evershell.db"))
        );
        let pg = "postgres://evershell@127.0.0.1:5432/evershell";
        assert_eq!(Location::parse(pg).expect("pg"), Location::Postgres(pg));
        assert!(Location::parse("mysql://127.0.0.1/x").is_err());
        assert!(Location::parse("sqlite://").is_err());
    }

    #[test]
    fn rejected_urls_never_echo_a_password() {
        let err = Location::parse("mysql://user:hunter2@127.0.0.1/x").expect_err("mysql");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn sqlite_urls_escape_url_syntax_in_paths() {
        let url = sqlite_url(Path::new("/tmp/a b?#%.db")).expect("utf-8 path");
        assert_eq!(url, "sqlite:///tmp/a%20b%3F%23%25.db?mode=rwc");
    }

    #[test]
    fn built_queries_number_their_placeholders() {
        let mut sql = Sql::new("SELECT 1 WHERE a = ");
        sql.bind("x").push(" AND b IN ").bind_list([1_i64, 2]);
        assert_eq!(sql.text, "SELECT 1 WHERE a = $1 AND b IN ($2, $3)");
    }
}
