//! Virtual keys: the `virtual_keys` table, one row per [`KeyRecord`] with the key's hash.
//!
//! A key's id, hash, prefix and creation time never change; everything else is overwritten by
//! [`Database::update_key`]. Rotation inserts the new key and ends the old one in one
//! transaction ([`Database::rotate_key`]). Revoked keys stay in the table (their hash still
//! resolves, to a revoked key) until something deletes them.

use sqlx::FromRow;
use switchyard_core::auth::keys::KeyRecord;

use super::{
    KeyFilter, Param, Sql, json, json_opt, limits_json, parse, parse_opt, stored, stored_opt,
};
use crate::db::Database;
use crate::error::StoreError;

/// The columns of a [`KeyRow`], JSON as text.
macro_rules! key_columns {
    () => {
        "id, prefix, name, user_id, team_id, CAST(models AS TEXT) AS models, \
         CAST(limits AS TEXT) AS limits, CAST(tags AS TEXT) AS tags, \
         CAST(metadata AS TEXT) AS metadata, expires_at_ms, revoked_at_ms, replaced_by, \
         created_at_ms, updated_at_ms"
    };
}

/// `$4` … `$13` are [`mutable_params`].
const INSERT_KEY: Sql = sql!(
    "INSERT INTO virtual_keys (id, key_hash, prefix, name, user_id, team_id, models, limits, \
     tags, metadata, expires_at_ms, revoked_at_ms, replaced_by, created_at_ms, updated_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7",
    J,
    ", $8",
    J,
    ", $9",
    J,
    ", $10",
    J,
    ", $11, $12, $13, $14, $15)"
);
/// `$2` … `$11` are [`mutable_params`].
const UPDATE_KEY: Sql = sql!(
    "UPDATE virtual_keys SET name = $2, user_id = $3, team_id = $4, models = $5",
    J,
    ", limits = $6",
    J,
    ", tags = $7",
    J,
    ", metadata = $8",
    J,
    ", expires_at_ms = $9, revoked_at_ms = $10, replaced_by = $11, updated_at_ms = $12 \
     WHERE id = $1"
);
/// Ends a live key: expiry no later than `$2`, replaced by `$3`.
const REPLACE_KEY: Sql = sql!(
    "UPDATE virtual_keys SET expires_at_ms = CASE WHEN expires_at_ms IS NULL \
     OR expires_at_ms > $2 THEN $2 ELSE expires_at_ms END, replaced_by = $3, \
     updated_at_ms = $4 WHERE id = $1 AND revoked_at_ms IS NULL"
);
const SELECT_KEY: Sql = sql!(
    "SELECT ",
    key_columns!(),
    " FROM virtual_keys WHERE id = $1"
);
const SELECT_KEY_BY_HASH: Sql = sql!(
    "SELECT ",
    key_columns!(),
    " FROM virtual_keys WHERE key_hash = $1"
);
const SELECT_KEY_HASH: Sql = sql!("SELECT key_hash FROM virtual_keys WHERE id = $1");
const LIST_KEYS: Sql = sql!(
    "SELECT ",
    key_columns!(),
    " FROM virtual_keys WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR team_id = $2) \
     AND ($3 OR revoked_at_ms IS NULL) ORDER BY created_at_ms DESC, id DESC"
);

/// A row of `virtual_keys` as selected, before its JSON is parsed.
#[derive(FromRow)]
struct KeyRow {
    id: String,
    prefix: String,
    name: Option<String>,
    user_id: Option<String>,
    team_id: Option<String>,
    models: Option<String>,
    limits: String,
    tags: String,
    metadata: String,
    expires_at_ms: Option<i64>,
    revoked_at_ms: Option<i64>,
    replaced_by: Option<String>,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl Database {
    /// Stores a new key under its hash. A key with the same id or hash is a
    /// [`StoreError::Conflict`].
    pub async fn insert_key(&self, key: &KeyRecord, hash: &str) -> Result<(), StoreError> {
        let params = insert_params(key, hash).map_err(self.invalid(what(&key.id)))?;
        self.execute(&INSERT_KEY, params)
            .await
            .map_err(self.insert_failed(|| what(&key.id)))?;
        Ok(())
    }

    pub async fn key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.one_key(&SELECT_KEY, id).await
    }

    /// The stored hash of key `id`.
    pub async fn key_hash(&self, id: &str) -> Result<Option<String>, StoreError> {
        let rows: Vec<(String,)> = self
            .rows(&SELECT_KEY_HASH, vec![Param::text(id)])
            .await
            .map_err(self.failed())?;
        Ok(rows.into_iter().next().map(|(hash,)| hash))
    }

    /// The key stored under `hash`, revoked or not.
    pub(super) async fn find_key_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.one_key(&SELECT_KEY_BY_HASH, hash).await
    }

    /// The keys `filter` selects, newest first (by creation, then id).
    pub async fn list_keys(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        let params = vec![
            Param::Text(filter.user_id.clone()),
            Param::Text(filter.team_id.clone()),
            Param::Bool(filter.include_revoked),
        ];
        let rows: Vec<KeyRow> = self.rows(&LIST_KEYS, params).await.map_err(self.failed())?;
        rows.into_iter().map(|row| self.decode_key(row)).collect()
    }

    /// Overwrites everything of key `key.id` but its hash, prefix and creation time. `false`
    /// if there is no such key.
    pub async fn update_key(&self, key: &KeyRecord) -> Result<bool, StoreError> {
        let mut params = vec![Param::text(&key.id)];
        params.extend(mutable_params(key).map_err(self.invalid(what(&key.id)))?);
        params.push(Param::Int(Some(key.updated_at_ms)));
        let changed = self
            .execute(&UPDATE_KEY, params)
            .await
            .map_err(self.failed())?;
        Ok(changed > 0)
    }

    /// Replaces key `old_id` by `new`, in one transaction: stores `new` under `new_hash`, and
    /// marks the old key replaced by it, expiring at `old_expires_at_ms` at the latest (the
    /// grace period), updated at `new.updated_at_ms`.
    ///
    /// `false`, and nothing stored, if there is no key `old_id` or it was revoked.
    pub async fn rotate_key(
        &self,
        old_id: &str,
        old_expires_at_ms: i64,
        new: &KeyRecord,
        new_hash: &str,
    ) -> Result<bool, StoreError> {
        let insert = insert_params(new, new_hash).map_err(self.invalid(what(&new.id)))?;
        let replace = vec![
            Param::text(old_id),
            Param::Int(Some(old_expires_at_ms)),
            Param::text(&new.id),
            Param::Int(Some(new.updated_at_ms)),
        ];
        self.execute_if((&REPLACE_KEY, replace), (&INSERT_KEY, insert))
            .await
            .map_err(self.insert_failed(|| what(&new.id)))
    }

    async fn one_key(&self, sql: &Sql, by: &str) -> Result<Option<KeyRecord>, StoreError> {
        let rows: Vec<KeyRow> = self
            .rows(sql, vec![Param::text(by)])
            .await
            .map_err(self.failed())?;
        rows.into_iter()
            .next()
            .map(|row| self.decode_key(row))
            .transpose()
    }

    fn decode_key(&self, row: KeyRow) -> Result<KeyRecord, StoreError> {
        let corrupt = self.corrupt("virtual_keys", &row.id);
        Ok(KeyRecord {
            models: parse_opt(&corrupt, "models", row.models.as_deref())?,
            limits: parse(&corrupt, "limits", &row.limits)?,
            tags: parse(&corrupt, "tags", &row.tags)?,
            metadata: parse(&corrupt, "metadata", &row.metadata)?,
            id: row.id,
            prefix: row.prefix,
            name: row.name,
            user_id: row.user_id,
            team_id: row.team_id,
            expires_at_ms: row.expires_at_ms,
            revoked_at_ms: row.revoked_at_ms,
            replaced_by: row.replaced_by,
            created_at_ms: row.created_at_ms,
            updated_at_ms: row.updated_at_ms,
        })
    }
}

fn what(id: &str) -> String {
    format!("virtual key {id:?}")
}

/// Every column of [`INSERT_KEY`], in order.
fn insert_params(key: &KeyRecord, hash: &str) -> Result<Vec<Param>, String> {
    let mut params = vec![
        stored("id", &key.id)?,
        stored("key_hash", hash)?,
        stored("prefix", &key.prefix)?,
    ];
    params.extend(mutable_params(key)?);
    params.push(Param::Int(Some(key.created_at_ms)));
    params.push(Param::Int(Some(key.updated_at_ms)));
    Ok(params)
}

/// The columns from `name` to `replaced_by`, in table order.
fn mutable_params(key: &KeyRecord) -> Result<Vec<Param>, String> {
    Ok(vec![
        stored_opt("name", key.name.as_deref())?,
        stored_opt("user_id", key.user_id.as_deref())?,
        stored_opt("team_id", key.team_id.as_deref())?,
        json_opt("models", key.models.as_ref())?,
        limits_json(&key.limits)?,
        json("tags", &key.tags)?,
        json("metadata", &key.metadata)?,
        Param::Int(key.expires_at_ms),
        Param::Int(key.revoked_at_ms),
        stored_opt("replaced_by", key.replaced_by.as_deref())?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params_of(sql: &str) -> usize {
        (1..=99).filter(|n| sql.contains(&format!("${n}"))).count()
    }

    #[test]
    fn every_parameter_is_bound() {
        let key = KeyRecord::default();
        let n = insert_params(&key, "h").unwrap().len();
        assert_eq!(params_of(INSERT_KEY.sqlite), n);
        assert_eq!(INSERT_KEY.postgres.matches("::jsonb").count(), 4);
        assert_eq!(
            params_of(UPDATE_KEY.postgres),
            2 + mutable_params(&key).unwrap().len()
        );
        assert!(!UPDATE_KEY.sqlite.contains("key_hash"));
        assert!(!UPDATE_KEY.sqlite.contains("created_at_ms"));
    }
}
