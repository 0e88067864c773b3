//! What the store's test suites share: unique names and temporary SQLite files. PostgreSQL and
//! Redis are the machine's own (`PG_URL`, `redis://127.0.0.1:6379`); each test names its schema
//! or key prefix with [`unique`].

// Each test crate includes this module and uses part of it.
#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use switchyard_store::Database;

pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A name no other test (of this or a concurrent run) uses: process, time and a sequence.
pub fn unique() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A database file in the temporary directory, removed (with its WAL files) on drop.
pub struct TempDb(pub PathBuf);

impl TempDb {
    pub fn new() -> TempDb {
        TempDb(std::env::temp_dir().join(format!("switchyard-store-{}.db", unique())))
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Runs `test` on a fresh, migrated SQLite file, removed afterwards.
pub async fn with_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Database) -> Fut,
    Fut: Future<Output = ()>,
{
    let file = TempDb::new();
    assert!(!file.0.exists());
    let db = Database::connect(&file.url())
        .await
        .expect("connect to SQLite");
    assert!(file.0.exists(), "the database file is created");
    assert_eq!(db.kind(), "SQLite");
    test(db.clone()).await;
    db.close().await;
}

/// Runs `test` on a fresh PostgreSQL schema of the machine's server, dropped afterwards (also
/// when the test panics).
pub async fn with_postgres<F, Fut>(test: F)
where
    F: FnOnce(Database) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let schema = format!("sy_test_{}", unique());
    let mut admin = PgConnection::connect(PG_URL)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 (start it with pg_ctlcluster)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .expect("create schema");

    let outcome = match Database::connect_postgres_schema(PG_URL, &schema).await {
        Ok(db) => {
            assert_eq!(db.kind(), "PostgreSQL");
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
            )
            .bind(&schema)
            .fetch_all(&mut admin)
            .await
            .expect("list tables");
            assert!(tables.iter().any(|t| t == "requests"), "{tables:?}");
            let outcome = tokio::spawn(test(db.clone())).await;
            db.close().await;
            outcome.map_err(|e| e.into_panic())
        }
        Err(e) => Err(Box::new(format!("connect: {e}")) as Box<dyn std::any::Any + Send>),
    };

    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await
        .expect("drop schema");
    let _ = admin.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Drops a schema a test made for itself, with everything in it.
pub async fn drop_schema(schema: &str) {
    let mut admin = PgConnection::connect(PG_URL).await.expect("PostgreSQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await
        .expect("drop schema");
    let _ = admin.close().await;
}
