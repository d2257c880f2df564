//! Runs each store test against both engines: SQLite in a temporary
//! directory and PostgreSQL in a fresh database of the local server, dropped
//! when the test ends (pass or fail), so tests run in parallel and leave
//! nothing behind.
#![allow(dead_code)] // each test file uses a different part

use std::any::Any;
use std::future::Future;
use std::path::PathBuf;

use evershell_store::Store;
use sqlx::{Connection, Executor, PgConnection};
use tokio::task::JoinError;

/// The PostgreSQL server the tests use (trust authentication, on this
/// machine and on CI; `.ci/run` starts it). Only its `test` database is
/// touched besides the per-test databases created here.
const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const POSTGRES_BASE_URL: &str = "postgres://postgres@127.0.0.1:5432";

#[derive(Debug, Clone, Copy)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A store under test and a private directory for files next to it.
pub struct TestDb {
    pub store: Store,
    pub dir: tempfile::TempDir,
    /// The URL the store was opened with (`Store::open` accepts it again).
    pub url: String,
}

/// Runs `test` on a fresh store of `engine`, then removes the store.
pub async fn run<F, Fut>(engine: Engine, test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, database) = match engine {
        Engine::Sqlite => (sqlite_url(dir.path().join("db.sqlite")), None),
        Engine::Postgres => {
            let name = create_database().await;
            (format!("{POSTGRES_BASE_URL}/{name}"), Some(name))
        }
    };
    let outcome = match Store::open(&url).await {
        // A panic in the test must not skip the cleanup below.
        Ok(store) => tokio::spawn(test(TestDb { store, dir, url }))
            .await
            .map_err(JoinError::into_panic),
        Err(e) => Err(Box::new(format!("cannot open {url}: {e}")) as Box<dyn Any + Send>),
    };
    if let Some(name) = database {
        drop_database(&name).await;
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

fn sqlite_url(path: PathBuf) -> String {
    format!("sqlite://{}", path.display())
}

async fn admin() -> PgConnection {
    PgConnection::connect(POSTGRES_ADMIN_URL)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 (see .ci/run)")
}

async fn create_database() -> String {
    let name = format!("evershell_test_{:016x}", rand::random::<u64>());
    let mut conn = admin().await;
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create the test database");
    name
}

async fn drop_database(name: &str) {
    let mut conn = admin().await;
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .expect("drop the test database");
}

/// Declares `$name` (an `async fn(TestDb)`) as two tests, `$name::sqlite`
/// and `$name::postgres`. Declare `mod support;` with `#[macro_use]`.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                crate::support::run(crate::support::Engine::Sqlite, super::$name).await;
            }

            #[tokio::test]
            async fn postgres() {
                crate::support::run(crate::support::Engine::Postgres, super::$name).await;
            }
        }
    )*};
}
