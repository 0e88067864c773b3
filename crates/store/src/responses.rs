//! The kept Responses API responses (table `responses`, migration 0005): `switchyard-core`'s
//! [`ResponseStore`] on SQLite and PostgreSQL.
//!
//! JSON is stored as text on both databases (one column type, one code path): it is read back
//! whole, never queried inside. A response belongs to the key that created it: a read names the
//! owner, and a write never replaces another owner's row. Expired rows are never
//! read; [`Database::purge_expired_responses`] deletes them in small transactions.

use futures_util::future::BoxFuture;
use sqlx::Row;
use switchyard_core::response_store::{ResponseStore, StoredResponse};

use crate::db::{Database, POSTGRES, SQLITE};
use crate::error::StoreError;
use crate::records::query_error;

/// Rows deleted per statement by [`Database::purge_expired_responses`].
const PURGE_CHUNK: i64 = 5_000;

/// The same text runs on both databases: `$N` parameters are positional in SQLite too.
const PUT: &str = "INSERT INTO responses \
     (id, owner, created_at_ms, expires_at_ms, input_items, response) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (id) DO UPDATE SET created_at_ms = excluded.created_at_ms, \
     expires_at_ms = excluded.expires_at_ms, input_items = excluded.input_items, \
     response = excluded.response WHERE responses.owner = excluded.owner";
const GET: &str = "SELECT created_at_ms, expires_at_ms, input_items, response FROM responses \
     WHERE id = $1 AND owner = $2 AND expires_at_ms > $3";
const PURGE: &str = "DELETE FROM responses WHERE id IN \
     (SELECT id FROM responses WHERE expires_at_ms <= $1 LIMIT $2)";

impl Database {
    /// Keeps `r`, replacing an earlier row of the same id and owner.
    pub async fn put_response(&self, r: &StoredResponse) -> Result<(), StoreError> {
        let input = r.input_items.to_string();
        let response = r.response.to_string();
        // PostgreSQL text cannot hold NUL; serialized JSON escapes it, ids and owners must not.
        if r.id.contains('\0') || r.owner.contains('\0') {
            return Err(StoreError::Invalid {
                kind: self.kind(),
                what: format!("response {:?}", r.id),
                reason: "its id or owner contains a NUL character".into(),
            });
        }
        macro_rules! put {
            ($pool:expr, $kind:expr) => {
                sqlx::query(PUT)
                    .bind(&r.id)
                    .bind(&r.owner)
                    .bind(r.created_at_ms)
                    .bind(r.expires_at_ms)
                    .bind(&input)
                    .bind(&response)
                    .execute($pool)
                    .await
                    .map_err(query_error($kind))
            };
        }
        match self {
            Database::Sqlite(pool) => put!(pool, SQLITE).map(drop),
            Database::Postgres(pool) => put!(pool, POSTGRES).map(drop),
        }
    }

    /// The response `id` of `owner`, unless it expired before `now_ms`.
    pub async fn response(
        &self,
        id: &str,
        owner: &str,
        now_ms: i64,
    ) -> Result<Option<StoredResponse>, StoreError> {
        if id.contains('\0') || owner.contains('\0') {
            return Ok(None);
        }
        macro_rules! get {
            ($pool:expr, $kind:expr) => {
                sqlx::query(GET)
                    .bind(id)
                    .bind(owner)
                    .bind(now_ms)
                    .fetch_optional($pool)
                    .await
                    .map_err(query_error($kind))?
                    .map(|row| {
                        Ok::<_, sqlx::Error>((
                            row.try_get::<i64, _>(0)?,
                            row.try_get::<i64, _>(1)?,
                            row.try_get::<String, _>(2)?,
                            row.try_get::<String, _>(3)?,
                        ))
                    })
                    .transpose()
                    .map_err(query_error($kind))?
            };
        }
        let row = match self {
            Database::Sqlite(pool) => get!(pool, SQLITE),
            Database::Postgres(pool) => get!(pool, POSTGRES),
        };
        let Some((created_at_ms, expires_at_ms, input, response)) = row else {
            return Ok(None);
        };
        let json = |column: &'static str, text: &str| {
            serde_json::from_str(text).map_err(|e| StoreError::CorruptRow {
                kind: self.kind(),
                table: "responses",
                id: id.to_owned(),
                column,
                reason: e.to_string(),
            })
        };
        Ok(Some(StoredResponse {
            id: id.to_owned(),
            owner: owner.to_owned(),
            created_at_ms,
            expires_at_ms,
            input_items: json("input_items", &input)?,
            response: json("response", &response)?,
        }))
    }

    /// Deletes the responses that expired before `now_ms`; returns how many.
    pub async fn purge_expired_responses(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let deleted = match self {
                Database::Sqlite(pool) => sqlx::query(PURGE)
                    .bind(now_ms)
                    .bind(PURGE_CHUNK)
                    .execute(pool)
                    .await
                    .map_err(query_error(SQLITE))?
                    .rows_affected(),
                Database::Postgres(pool) => sqlx::query(PURGE)
                    .bind(now_ms)
                    .bind(PURGE_CHUNK)
                    .execute(pool)
                    .await
                    .map_err(query_error(POSTGRES))?
                    .rows_affected(),
            };
            total += deleted;
            if deleted < PURGE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }
}

impl ResponseStore for Database {
    fn put<'a>(&'a self, response: &'a StoredResponse) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.put_response(response).await.map_err(|e| e.to_string()) })
    }

    fn get<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Option<StoredResponse>, String>> {
        Box::pin(async move {
            self.response(id, owner, now_ms)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn purge_expired(&self, now_ms: i64) -> BoxFuture<'_, Result<u64, String>> {
        Box::pin(async move {
            self.purge_expired_responses(now_ms)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
