//! The request log's writer for an SQLite file: rusqlite, on a blocking thread, with one
//! prepared single-row `INSERT` per record and prepared upserts for the rollups, all in one
//! transaction per batch.
//!
//! Why not sqlx, like everything else in this crate: the gateway pays for every record it
//! writes, and SQLite runs in the gateway's own process. Through sqlx a record cost about 30 µs
//! of CPU (each bound value is boxed, the statement text is rebuilt and hashed per batch, and
//! every call crosses to sqlx's worker thread); bound straight into a cached statement it costs
//! a few. sqlx keeps the schema, the migrations and every other query; both libraries link the
//! same SQLite (`libsqlite3-sys`), and WAL lets this writer and sqlx's readers work side by
//! side. An in-memory database cannot be shared between two connections, so it keeps the sqlx
//! writer.
//!
//! One writing connection per database file per process, shared by every clone of the
//! `Database` handle: SQLite admits one writer at a time anyway.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use sqlx::SqlitePool;
use switchyard_core::record::RequestRecord;

use super::{INSERT_INTO, RowJson, finite, opt_text, text, tokens};
use crate::db::SQLITE;
use crate::error::StoreError;

/// How long a write waits for another writer (an admin change through sqlx) to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

type Shared = Arc<Mutex<Option<Connection>>>;

static WRITERS: LazyLock<Mutex<HashMap<PathBuf, Shared>>> = LazyLock::new(Default::default);

/// The writer of the database file behind `pool`; `None` for an in-memory database.
pub(crate) fn writer_for(pool: &SqlitePool) -> Option<SqliteLog> {
    let options = pool.connect_options();
    let path = options.get_filename();
    let name = path.to_string_lossy();
    if name.is_empty() || name.contains(":memory:") || name.starts_with("file:sqlx-in-memory") {
        return None;
    }
    let path = path.to_path_buf();
    let mut writers = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
    let conn = writers.entry(path.clone()).or_default().clone();
    Some(SqliteLog { path, conn })
}

/// A handle on one file's writing connection (opened on first use, reopened after an error).
#[derive(Clone)]
pub(crate) struct SqliteLog {
    path: PathBuf,
    conn: Shared,
}

impl SqliteLog {
    /// Stores `batch` and adds what was new to the rollups, in one transaction; returns how
    /// many records were new. Blocking: call it on a blocking thread.
    pub(crate) fn write(&self, batch: &[RequestRecord]) -> Result<usize, StoreError> {
        let json = super::encode_json(batch)?;
        let mut slot = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(self.open().map_err(|e| self.error(e))?);
        }
        let Some(conn) = slot.as_mut() else {
            unreachable!("opened above")
        };
        let written = write_batch(conn, batch, &json);
        if written.is_err() {
            // A connection in an unknown state is not reused.
            *slot = None;
        }
        written.map_err(|e| self.error(e))
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(conn)
    }

    fn error(&self, e: rusqlite::Error) -> StoreError {
        StoreError::Write {
            kind: SQLITE,
            reason: format!("{}: {e}", self.path.display()),
        }
    }
}

fn write_batch(
    conn: &mut Connection,
    batch: &[RequestRecord],
    json: &[RowJson],
) -> rusqlite::Result<usize> {
    let tx = conn.transaction()?;
    let mut new = Vec::with_capacity(batch.len());
    {
        let mut stmt = tx.prepare_cached(&insert_one())?;
        for (r, j) in batch.iter().zip(json) {
            let inserted = insert(&mut stmt, r, j)?;
            new.push(inserted == 1);
        }
    }
    let stored = new.iter().filter(|n| **n).count();
    let rollup =
        super::rollup::Rollup::of(batch.iter().zip(&new).filter(|(_, n)| **n).map(|(r, _)| r));
    rollup.write_rusqlite(&tx)?;
    tx.commit()?;
    Ok(stored)
}

/// `INSERT INTO requests (…) VALUES (?1, …, ?34) ON CONFLICT (request_id) DO NOTHING`.
fn insert_one() -> String {
    let params: Vec<String> = (1..=super::COLUMNS).map(|i| format!("?{i}")).collect();
    format!(
        "{INSERT_INTO}VALUES ({}) ON CONFLICT (request_id) DO NOTHING",
        params.join(", ")
    )
}

/// Inserts one record; 1 when it was new, 0 when its id was already stored.
fn insert(
    stmt: &mut rusqlite::CachedStatement<'_>,
    r: &RequestRecord,
    j: &RowJson,
) -> rusqlite::Result<usize> {
    // In the column order of `INSERT_INTO`.
    stmt.execute(rusqlite::params![
        text(&r.request_id),
        r.started_at_ms,
        r.endpoint,
        r.dialect,
        opt_text(&r.key_id),
        opt_text(&r.user),
        opt_text(&r.team),
        opt_text(&r.feature),
        j.tags.as_ref(),
        text(&r.requested_model),
        opt_text(&r.route),
        opt_text(&r.provider),
        opt_text(&r.model),
        opt_text(&r.upstream_model),
        r.stream,
        r.status,
        opt_text(&r.error_code),
        r.admission,
        tokens(r.prompt_tokens),
        tokens(r.completion_tokens),
        tokens(r.cached_tokens),
        r.usage_estimated,
        finite(r.cost_usd),
        r.cache_hit,
        finite(r.cache_saved_usd),
        finite(r.latency_ms),
        r.ttft_ms.filter(|v| v.is_finite()),
        j.attempts,
        j.guardrails.as_ref(),
        r.client_disconnected,
        opt_text(&r.downgraded_from),
        r.trace.trace_id_hex(),
        opt_text(&r.request_body),
        opt_text(&r.response_body),
    ])
}
