//! The responses the gateway keeps for the Responses API entrance: each one it served, with the
//! whole conversation it answered, so that a later request's `previous_response_id` is expanded
//! at the gateway into the full input (and any provider, not only the one that served the
//! previous turn, can serve the next), and so that `GET /v1/responses/{id}` can read it back.
//!
//! [`ResponseStore`] is the seam: `switchyard-store` implements it on SQLite and PostgreSQL,
//! [`MemoryResponseStore`] in process. Responses belong to the caller that created them (the
//! key id of its principal, [`owner_of`]): another key cannot read or continue them. Each row is
//! self-contained — it holds the conversation up to and including its own answer, not a link to
//! the previous row — so a chain never breaks when an older turn expires first. What is kept and
//! for how long is configured in [`config`]; the entrance in `switchyard-server` decides when.

pub mod config;

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::auth::Principal;

/// The owner of what a caller with no key stores.
pub const ANONYMOUS: &str = "anonymous";

/// Who owns what `principal` stores: its key id.
pub fn owner_of(principal: &Principal) -> &str {
    principal.key_id.as_deref().unwrap_or(ANONYMOUS)
}

/// One kept response.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    /// The `response` object's id (`resp_…`), as the client knows it.
    pub id: String,
    pub owner: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// The conversation the response answered, as a JSON array of input items, with any
    /// `previous_response_id` already expanded.
    pub input_items: Value,
    /// The `response` object as the client received it (its `output` holds the output items).
    pub response: Value,
}

impl StoredResponse {
    /// The conversation including this response's answer: what a request that names it as
    /// `previous_response_id` continues from.
    pub fn conversation(&self) -> Vec<Value> {
        let input = self.input_items.as_array().into_iter().flatten();
        let output = self
            .response
            .get("output")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        input.chain(output).cloned().collect()
    }
}

/// Where kept responses live. Errors are messages for the log; the entrance decides what the
/// client sees.
pub trait ResponseStore: Send + Sync {
    /// Keeps `response` (replacing one of the same id and owner).
    fn put<'a>(&'a self, response: &'a StoredResponse) -> BoxFuture<'a, Result<(), String>>;

    /// The response `id` of `owner`, unless it expired before `now_ms`.
    fn get<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Option<StoredResponse>, String>>;

    /// Deletes the responses that expired before `now_ms`; returns how many.
    fn purge_expired(&self, now_ms: i64) -> BoxFuture<'_, Result<u64, String>>;
}

/// Kept responses in process memory: for tests and single-replica demos.
#[derive(Default)]
pub struct MemoryResponseStore {
    rows: Mutex<HashMap<String, StoredResponse>>,
}

impl MemoryResponseStore {
    fn rows(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoredResponse>> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ResponseStore for MemoryResponseStore {
    fn put<'a>(&'a self, response: &'a StoredResponse) -> BoxFuture<'a, Result<(), String>> {
        let mut rows = self.rows();
        let taken = rows
            .get(&response.id)
            .is_some_and(|r| r.owner != response.owner);
        if !taken {
            rows.insert(response.id.clone(), response.clone());
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn get<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Option<StoredResponse>, String>> {
        let found = self
            .rows()
            .get(id)
            .filter(|r| r.owner == owner && r.expires_at_ms > now_ms)
            .cloned();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn purge_expired(&self, now_ms: i64) -> BoxFuture<'_, Result<u64, String>> {
        let mut rows = self.rows();
        let before = rows.len();
        rows.retain(|_, r| r.expires_at_ms > now_ms);
        let purged = (before - rows.len()) as u64;
        Box::pin(std::future::ready(Ok(purged)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(id: &str, owner: &str, expires: i64) -> StoredResponse {
        StoredResponse {
            id: id.into(),
            owner: owner.into(),
            created_at_ms: 0,
            expires_at_ms: expires,
            input_items: json!([{"role": "user", "content": "hi"}]),
            response: json!({"id": id, "output": [{"type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": "hello"}]}]}),
        }
    }

    #[tokio::test]
    async fn responses_belong_to_their_owner_until_they_expire() {
        let store = MemoryResponseStore::default();
        store.put(&stored("resp_a", "k1", 100)).await.unwrap();
        assert!(store.get("resp_a", "k1", 50).await.unwrap().is_some());
        assert!(store.get("resp_a", "k2", 50).await.unwrap().is_none());
        assert!(store.get("resp_a", "k1", 100).await.unwrap().is_none());
        // Another owner cannot overwrite it.
        store.put(&stored("resp_a", "k2", 900)).await.unwrap();
        assert!(store.get("resp_a", "k2", 50).await.unwrap().is_none());
        assert_eq!(store.purge_expired(100).await.unwrap(), 1);
        assert_eq!(store.purge_expired(100).await.unwrap(), 0);
    }

    #[test]
    fn the_conversation_is_the_input_then_the_output() {
        let c = stored("resp_a", "k1", 1).conversation();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0]["role"], "user");
        assert_eq!(c[1]["content"][0]["text"], "hello");
    }
}
