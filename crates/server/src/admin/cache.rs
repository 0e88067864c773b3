//! `POST /admin/cache/purge`: drops cached answers — a team's, a key's, or all of them — from
//! the exact cache (this process's or the shared Redis one) and from this process's semantic
//! index. Needs an admin key; works without a database; audited when there is one.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use switchyard_core::cache::Purge;
use switchyard_core::cache::key::{key_marker, team_prefix};
use switchyard_core::request::RequestContext;
use switchyard_core::{Endpoint, GatewayError};

use crate::egress;
use crate::ingress::Shared;

/// Exactly one of the three.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeRequest {
    team: Option<String>,
    key: Option<String>,
    #[serde(default)]
    all: bool,
}

pub async fn purge(State(app): Shared, headers: HeaderMap, body: Body) -> Response {
    let ctx = RequestContext::new(Endpoint::Admin, headers);
    let actor = match app.gateway.authorize_admin(ctx.credential.as_deref()) {
        Ok(actor) => actor,
        Err(e) => return egress::error(&ctx.id, &e),
    };
    let request: PurgeRequest =
        match crate::ingress::read_json(&ctx.headers, body, app.max_body_size).await {
            Ok(r) => r,
            Err(e) => return egress::error(&ctx.id, &e),
        };
    let (purge, target) = match (request.team, request.key, request.all) {
        (Some(team), None, false) => (Purge::Team(team_prefix(&team)), format!("team:{team}")),
        (None, Some(key), false) => (Purge::Key(key_marker(&key)), format!("key:{key}")),
        (None, None, true) => (Purge::All, "all".to_owned()),
        _ => {
            let e = GatewayError::invalid_request(
                "invalid_purge",
                "send exactly one of {\"team\": \"ID\"}, {\"key\": \"KEY_ID\"} or {\"all\": true}",
            );
            return egress::error(&ctx.id, &e);
        }
    };
    let purged = match app.gateway.cache().purge(&purge).await {
        Ok(n) => n,
        Err(e) => {
            let e = GatewayError::new(
                503,
                "api_error",
                "cache_unavailable",
                format!("cannot purge the cache: {e}"),
            );
            return egress::error(&ctx.id, &e);
        }
    };
    if let Some(admin) = &app.admin {
        let details = serde_json::json!({ "purged": purged });
        admin.audit(&actor, "cache.purge", &target, details).await;
    }
    tracing::info!(actor, target, purged, "cache purged");
    let body = serde_json::json!({ "purged": purged, "target": target });
    egress::json(&ctx.id, StatusCode::OK, &body, None)
}
