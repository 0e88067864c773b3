//! The admin API under `/admin/`: virtual keys ([`keys`]), users and teams ([`members`]), their
//! current spend and remaining limits, the audit log, and reports over the request log
//! ([`reports`]).
//!
//! Every route here is authenticated by an admin key (`auth.admin_keys`), never by a virtual
//! key, and every change is written to the audit log (who, what, when — never a key). A change
//! to a key drops it from this replica's key cache at once and is published to the others
//! (Redis pub/sub) so that it takes effect everywhere within the cache's TTL at worst.
//!
//! This module owns the HTTP shapes; the SQL lives in `switchyard-store`, the key cache and the
//! counters in `switchyard-core`.

pub mod keys;
pub mod members;
pub mod reports;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use switchyard_core::auth::keys::{KeyHasher, VirtualKeys};
use switchyard_core::request::{RequestContext, unix_ms};
use switchyard_core::{Endpoint, GatewayError};
use switchyard_store::redis::KeyEvents;
use switchyard_store::{AuditEntry, Database, StoreError};

use crate::egress;
use crate::ingress::{AppState, Shared};

/// What the admin API needs besides the gateway: present when there is a database.
pub struct Admin {
    pub db: Database,
    pub keys: Arc<VirtualKeys>,
    /// Publishes key changes to the other replicas; `None` without Redis.
    pub events: Option<KeyEvents>,
}

impl Admin {
    pub fn hasher(&self) -> &KeyHasher {
        self.keys.hasher()
    }

    /// Drops a key (by its stored hash), or every key (`"*"`), from the caches of this replica
    /// and, through Redis, of every other.
    pub async fn invalidate(&self, hash: &str) {
        if hash == "*" {
            self.keys.invalidate_all();
        } else {
            self.keys.invalidate(hash).await;
        }
        if let Some(events) = &self.events
            && let Err(e) = events.publish(hash).await
        {
            tracing::warn!(error = %e, "cannot tell other replicas about a key change; they will see it when their key cache expires");
        }
    }

    /// Appends to the audit log. A change that was made but could not be audited is logged
    /// loudly rather than undone.
    pub async fn audit(&self, actor: &str, action: &str, target: &str, details: serde_json::Value) {
        let entry = AuditEntry {
            at_ms: unix_ms(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            details,
        };
        if let Err(e) = self.db.append_audit(&entry).await {
            tracing::error!(error = %e, actor, action, target, "cannot write the audit log");
        }
    }
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/keys", post(keys::create).get(keys::list))
        .route(
            "/admin/keys/{id}",
            get(keys::get).patch(keys::update).delete(keys::revoke),
        )
        .route("/admin/keys/{id}/revoke", post(keys::revoke))
        .route("/admin/keys/{id}/rotate", post(keys::rotate))
        .route("/admin/keys/{id}/usage", get(keys::usage))
        .route(
            "/admin/users",
            post(members::create_one::<false>).get(members::list_all::<false>),
        )
        .route(
            "/admin/users/{id}",
            get(members::get_one::<false>).patch(members::update_one::<false>),
        )
        .route("/admin/users/{id}/usage", get(members::usage_of::<false>))
        .route(
            "/admin/teams",
            post(members::create_one::<true>).get(members::list_all::<true>),
        )
        .route(
            "/admin/teams/{id}",
            get(members::get_one::<true>).patch(members::update_one::<true>),
        )
        .route("/admin/teams/{id}/usage", get(members::usage_of::<true>))
        .route("/admin/audit", get(audit_log))
        .route("/admin/reports/usage", get(reports::usage))
        .route("/admin/reports/latency", get(reports::latency))
        .route("/admin/reports/events", get(reports::events))
}

/// An authenticated admin request: who acts, and the parts it needs.
pub struct Call {
    pub ctx: RequestContext,
    pub actor: String,
    pub app: Arc<AppState>,
}

impl Call {
    /// Authenticates the admin key; key management also needs a database and an admin key.
    /// The error is the response to send.
    pub fn open(app: Arc<AppState>, headers: HeaderMap) -> Result<Call, Box<Response>> {
        let ctx = RequestContext::new(Endpoint::Admin, headers);
        let fail = |e| Box::new(egress::error(&ctx.id, &e));
        let actor = app
            .gateway
            .authorize_admin(ctx.credential.as_deref())
            .map_err(fail)?;
        if app.gateway.runtime().config.auth.admin_keys.is_empty() {
            return Err(fail(GatewayError::new(
                403,
                "permission_error",
                "admin_keys_required",
                "managing keys, users and teams needs an admin key: set auth.admin_keys in the config",
            )));
        }
        if app.admin.is_none() {
            return Err(fail(no_database()));
        }
        Ok(Call { ctx, actor, app })
    }

    pub fn admin(&self) -> &Admin {
        // `open` refuses a call when there is no admin state.
        self.app.admin.as_deref().unwrap_or_else(|| unreachable!())
    }

    pub fn ok<T: serde::Serialize>(&self, status: StatusCode, body: &T) -> Response {
        egress::json(&self.ctx.id, status, body, None)
    }

    pub fn fail(&self, e: &GatewayError) -> Response {
        egress::error(&self.ctx.id, e)
    }

    pub fn respond<T: serde::Serialize>(
        &self,
        status: StatusCode,
        result: Result<T, GatewayError>,
    ) -> Response {
        match result {
            Ok(body) => self.ok(status, &body),
            Err(e) => self.fail(&e),
        }
    }
}

/// Opens an admin call or returns the error response.
macro_rules! open_call {
    ($app:expr, $headers:expr) => {
        match $crate::admin::Call::open($app, $headers) {
            Ok(call) => call,
            Err(response) => return *response,
        }
    };
}
pub(crate) use open_call;

fn no_database() -> GatewayError {
    GatewayError::new(
        503,
        "api_error",
        "no_database",
        "virtual keys, users and teams need a database: set database.url (sqlite://FILE or postgres://…)",
    )
}

pub fn store_error(e: StoreError) -> GatewayError {
    match e {
        StoreError::Conflict { .. } => {
            GatewayError::new(409, "invalid_request_error", "conflict", e.to_string())
        }
        other => {
            tracing::error!(error = %other, "admin API: database error");
            GatewayError::new(
                503,
                "api_error",
                "database_error",
                format!("the database failed: {other}"),
            )
        }
    }
}

/// What `GET /admin/{keys,users,teams}/{id}/usage` answers: the limits, and the current use
/// and what is left of each, read from the counters.
pub async fn usage_report(
    call: &Call,
    scope: &'static str,
    id: &str,
    limits: &switchyard_core::admit::limits::Limits,
) -> Result<serde_json::Value, GatewayError> {
    let governor = call.app.gateway.runtime().governor.clone();
    let usage = governor.usage(scope, id, limits).await.map_err(|e| {
        GatewayError::new(
            503,
            "api_error",
            "limits_unavailable",
            format!("cannot read the counters: {e}"),
        )
    })?;
    Ok(serde_json::json!({ "id": id, "limits": limits, "usage": usage }))
}

pub fn not_found(what: &str, id: &str) -> GatewayError {
    GatewayError::new(
        404,
        "invalid_request_error",
        "not_found",
        format!("no {what} \"{id}\""),
    )
}

/// Reads an admin request body: JSON, within the gateway's body size limit.
pub async fn body<T: DeserializeOwned>(call: &Call, body: Body) -> Result<T, GatewayError> {
    crate::ingress::read_json(&call.ctx.headers, body, call.app.max_body_size).await
}

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default = "default_audit_limit")]
    limit: i64,
}

fn default_audit_limit() -> i64 {
    100
}

async fn audit_log(
    State(app): Shared,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Response {
    let call = open_call!(app, headers);
    match call.admin().db.audit_log(q.limit.clamp(1, 10_000)).await {
        Ok(entries) => call.ok(StatusCode::OK, &serde_json::json!({ "data": entries })),
        Err(e) => call.fail(&store_error(e)),
    }
}

/// Deserializes a field that may be absent (no change), `null` (clear) or a value (set).
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
