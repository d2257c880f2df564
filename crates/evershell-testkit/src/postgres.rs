//! Throwaway PostgreSQL databases on the local server, for tests and
//! benchmarks that run the platform on PostgreSQL.
//!
//! The server is the one `.ci/run` starts: `127.0.0.1:5432`, user
//! `postgres`, trust authentication. Each [`TempDatabase`] is a fresh
//! database with a random name, dropped (with its open connections) when the
//! value is dropped, so parallel tests never share state.

use sqlx::{Connection, Executor, PgConnection};

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const BASE_URL: &str = "postgres://postgres@127.0.0.1:5432";

/// A database that exists until this value is dropped.
pub struct TempDatabase {
    name: String,
    url: String,
}

impl TempDatabase {
    /// Creates a fresh empty database.
    pub async fn create() -> Result<TempDatabase, sqlx::Error> {
        let name = format!("evershell_test_{:016x}", rand::random::<u64>());
        let mut conn = PgConnection::connect(ADMIN_URL).await?;
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await?;
        conn.close().await?;
        let url = format!("{BASE_URL}/{name}");
        Ok(TempDatabase { name, url })
    }

    /// The `postgres://…` URL of the database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        // Drop may run inside or outside a runtime: do the work on a thread
        // of its own with a small runtime, and wait for it.
        let name = std::mem::take(&mut self.name);
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for dropping the test database");
            runtime.block_on(async move {
                let mut conn = PgConnection::connect(ADMIN_URL).await?;
                conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await?;
                conn.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = done {
            eprintln!("could not drop a test database: {e}");
        }
    }
}
