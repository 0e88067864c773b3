//! What the store's test suites share: unique names and temporary SQLite files. PostgreSQL and
//! Redis are the machine's own (`PG_URL`, `redis://127.0.0.1:6379`); each test names its schema
//! or key prefix with [`unique`].

// Each test crate includes this module and uses part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

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
