//! The conversations the gateway keeps for the Responses entrance (`responses:` in the config):
//! reading a `previous_response_id` back into the whole conversation, keeping each answer
//! with the conversation it answered, and the errors a client gets when storing is off or a
//! response is not there.
//!
//! A response is kept under the key that created it ([`owner_of`]): another key neither reads
//! nor continues it, and is told it does not exist. A response is kept before its last byte
//! reaches the client, so that a client may continue it the moment it has it. Failing to keep
//! one is logged, never turned into an error for a response already served.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchyard_core::request::unix_ms;
use switchyard_core::response_store::{ResponseStore, StoredResponse, owner_of};
use switchyard_core::{GatewayError, RequestContext};

use crate::ingress::AppState;

/// The store, when the gateway keeps responses.
#[derive(Clone)]
pub struct History {
    store: Arc<dyn ResponseStore>,
    ttl: Duration,
}

impl History {
    /// The gateway's history, unless storing is off (`responses.store`, or no database).
    pub fn of(app: &AppState) -> Option<History> {
        let store = app.responses.clone()?;
        let config = &app.gateway.runtime().config.responses;
        config.stores(true).then(|| History {
            store,
            ttl: config.ttl,
        })
    }

    /// The response `id` of `owner`.
    pub async fn get(&self, id: &str, owner: &str) -> Result<StoredResponse, GatewayError> {
        match self.store.get(id, owner, unix_ms()).await {
            Ok(Some(found)) => Ok(found),
            Ok(None) => Err(not_found(id, self.ttl)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a kept response");
                Err(GatewayError::new(
                    503,
                    "server_error",
                    "response_store_unavailable",
                    "the gateway cannot read its kept responses right now (database error); retry shortly",
                ))
            }
        }
    }

    /// What to keep once the answer to `conversation` is known.
    pub fn keeper(&self, owner: String, conversation: Vec<Value>) -> Keeper {
        Keeper {
            history: self.clone(),
            owner,
            input_items: Value::Array(conversation),
        }
    }
}

/// Keeps one answer with the conversation it answered.
pub struct Keeper {
    history: History,
    owner: String,
    input_items: Value,
}

impl Keeper {
    /// Keeps `response` (a `response` object), unless it has no id or did not finish.
    pub async fn keep(self, response: Value) {
        let finished = matches!(
            response.get("status").and_then(Value::as_str),
            Some("completed" | "incomplete") | None
        );
        let Some(id) = response
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return;
        };
        if !finished {
            return;
        }
        let now = unix_ms();
        let ttl_ms = i64::try_from(self.history.ttl.as_millis()).unwrap_or(i64::MAX);
        let stored = StoredResponse {
            id,
            owner: self.owner,
            created_at_ms: now,
            expires_at_ms: now.saturating_add(ttl_ms),
            input_items: self.input_items,
            response,
        };
        if let Err(e) = self.history.store.put(&stored).await {
            tracing::warn!(id = %stored.id, error = %e, "cannot keep a response: previous_response_id will not find it");
        }
    }
}

/// Who is calling, as the owner of what they keep. The pipeline authenticates the request
/// again; the key cache answers that second time.
pub async fn caller(app: &AppState, ctx: &RequestContext) -> Result<String, GatewayError> {
    let runtime = app.gateway.runtime();
    let principal = runtime.auth.authenticate(ctx.credential.as_deref()).await?;
    Ok(owner_of(&principal).to_owned())
}

const HOW_TO_TURN_ON: &str = "set responses.store: true in the gateway's config (it needs a database.url), or send the whole conversation in input";

/// `previous_response_id` on a gateway that keeps no responses.
pub fn previous_without_storing() -> GatewayError {
    GatewayError::invalid_request(
        "response_storage_disabled",
        format!(
            "previous_response_id needs the gateway to keep responses, and storing them is off on this gateway: {HOW_TO_TURN_ON}"
        ),
    )
    .with_param("previous_response_id")
}

/// `GET /v1/responses/{id}` on a gateway that keeps no responses.
pub fn read_without_storing() -> GatewayError {
    GatewayError::new(
        404,
        "invalid_request_error",
        "response_storage_disabled",
        format!(
            "this gateway keeps no responses, so none can be read back: storing them is off; {HOW_TO_TURN_ON}"
        ),
    )
}

fn not_found(id: &str, ttl: Duration) -> GatewayError {
    let ttl = humantime::format_duration(ttl);
    GatewayError::new(
        404,
        "invalid_request_error",
        "response_not_found",
        format!(
            "Response with id '{id}' not found: the gateway keeps responses for {ttl}, only for the API key that created them, and not those created with store: false"
        ),
    )
}
