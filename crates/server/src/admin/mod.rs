//! The admin API under `/admin/`: virtual keys ([`keys`]), users and teams ([`members`]), their
//! current spend and remaining limits, the audit log, and reports over the request log
//! ([`reports`]).
//!
//! Every route here is authenticated by an admin key (`auth.admin_keys`) or a read-only viewer
//! key (`auth.viewer_keys`) as a bearer token, or by the web console's session cookie, never by
//! a virtual key ([`identify`]). [`guard`] stands before every route: a change needs an admin
//! (viewers get 403 `read_only`) and, with the cookie, the session's CSRF token. Every change
//! is written to the audit log (who, what, when — never a key). A change
//! to a key drops it from this replica's key cache at once and is published to the others
//! (Redis pub/sub) so that it takes effect everywhere within the cache's TTL at worst.
//!
//! This module owns the HTTP shapes; the SQL lives in `switchyard-store`, the key cache and the
//! counters in `switchyard-core`.

pub mod cache;
pub mod budgets;
pub mod keys;
pub mod members;
pub mod reports;
pub mod requests;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use switchyard_core::auth::keys::{KeyHasher, VirtualKeys};
use switchyard_core::request::{RequestContext, unix_ms};
use switchyard_core::{Endpoint, GatewayError};
use switchyard_store::redis::KeyEvents;
use switchyard_store::{AuditEntry, Database, StoreError};

use crate::console::session::{self, Role, SessionInfo};
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
        .route("/admin/cache/purge", post(cache::purge))
        .route("/admin/reports/usage", get(reports::usage))
        .route("/admin/reports/latency", get(reports::latency))
        .route("/admin/reports/events", get(reports::events))
        .route("/admin/requests", get(requests::list))
        .route("/admin/requests/{id}", get(requests::detail))
        .route("/admin/requests/{id}/replay", post(requests::replay))
        .route("/admin/budgets", get(budgets::list))
}

/// Who calls the admin API: the actor named in the audit log, the role, and the console
/// session when the call came with its cookie.
pub struct Caller {
    pub actor: String,
    pub role: Role,
    pub session: Option<SessionInfo>,
}

/// Authenticates an admin call: a bearer key decides when there is one (an admin key, a viewer
/// key, or, with no admin keys configured, what `authorize_admin` accepts); else the console's
/// session cookie; else the call is anonymous, which only a gateway with no keys at all admits.
pub fn identify(app: &AppState, ctx: &RequestContext) -> Result<Caller, GatewayError> {
    let caller = |actor, role, session| Caller {
        actor,
        role,
        session,
    };
    if let Some(credential) = ctx.credential.as_deref().filter(|c| !c.is_empty()) {
        let runtime = app.gateway.runtime();
        if let Some((actor, Role::Viewer)) = session::identify_key(&runtime.config.auth, credential)
        {
            return Ok(caller(actor, Role::Viewer, None));
        }
        let actor = app.gateway.authorize_admin(Some(credential))?;
        return Ok(caller(actor, Role::Admin, None));
    }
    if let Some(info) = crate::console::signed_in(app, &ctx.headers) {
        return Ok(caller(info.actor.clone(), info.role, Some(info)));
    }
    if session::token_from(&ctx.headers).is_some() {
        return Err(crate::console::signed_out());
    }
    let actor = app.gateway.authorize_admin(None)?;
    Ok(caller(actor, Role::Admin, None))
}

/// Stands before every admin route: a change (any method but GET and HEAD) needs an admin,
/// and, when made with the console's cookie, the session's CSRF token in `X-CSRF-Token`.
/// Reads pass; their handlers authenticate them.
pub async fn guard(State(app): Shared, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let ctx = RequestContext::new(Endpoint::Admin, request.headers().clone());
    let caller = match identify(&app, &ctx) {
        Ok(caller) => caller,
        Err(e) => return egress::error(&ctx.id, &e),
    };
    if let Some(session) = &caller.session
        && !session::csrf_matches(&ctx.headers, session)
    {
        return egress::error(&ctx.id, &crate::console::csrf_invalid());
    }
    if caller.role == Role::Viewer {
        let e = GatewayError::new(
            403,
            "permission_error",
            "read_only",
            format!(
                "{} is a read-only viewer (auth.viewer_keys): changes need an admin key",
                caller.actor
            ),
        );
        return egress::error(&ctx.id, &e);
    }
    next.run(request).await
}

/// An authenticated admin request: who acts, and the parts it needs.
pub struct Call {
    pub ctx: RequestContext,
    pub actor: String,
    pub app: Arc<AppState>,
}

impl Call {
    /// Authenticates the caller ([`identify`]; [`guard`] has already refused a viewer's or a
    /// CSRF-less change); key management also needs a database and an admin key. The error is
    /// the response to send.
    pub fn open(app: Arc<AppState>, headers: HeaderMap) -> Result<Call, Box<Response>> {
        let ctx = RequestContext::new(Endpoint::Admin, headers);
        let fail = |e| Box::new(egress::error(&ctx.id, &e));
        let actor = identify(&app, &ctx).map_err(fail)?.actor;
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
