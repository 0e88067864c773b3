//! `POST /v1/feedback`: what a user thought of an answer, attached to the request's record so
//! that the reports average it by model, route and feature.
//!
//! The body is `{"request_id": "…", "score": 1, "comment": "…"}` — the request id is the
//! `x-request-id` the gateway returned. Any finite score is accepted (thumbs as 1 / -1, stars as
//! 1–5: the reports average what they get); posting again replaces the earlier score. Only the
//! key that made the request, or an admin key, may rate it; to any other key the request does
//! not exist (404), so feedback cannot be used to probe other tenants' request ids.

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use switchyard_core::request::unix_ms;
use switchyard_core::{Endpoint, GatewayError, RequestContext};
use switchyard_store::{Database, Feedback};

use crate::egress;
use crate::ingress::{Shared, read_json};

/// How long feedback for a request not found yet waits for the buffered records to be written.
const FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Longest comment kept.
const MAX_COMMENT_BYTES: usize = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    request_id: String,
    score: f64,
    #[serde(default)]
    comment: Option<String>,
}

pub async fn post(State(app): Shared, request: Request<Body>) -> Response {
    let (parts, body) = request.into_parts();
    let ctx = RequestContext::new(Endpoint::Admin, parts.headers);
    let result = async {
        let body: FeedbackBody = read_json(&ctx.headers, body, app.max_body_size).await?;
        let db = app.admin.as_ref().map(|a| &a.db).ok_or_else(no_database)?;
        let is_admin = app
            .gateway
            .authorize_admin(ctx.credential.as_deref())
            .is_ok_and(|who| who != "anonymous");
        let caller = if is_admin {
            None
        } else {
            let runtime = app.gateway.runtime();
            Some(runtime.auth.authenticate(ctx.credential.as_deref()).await?)
        };
        validate(&body)?;
        let target = match db.feedback_target(&body.request_id).await {
            Ok(Some(t)) => Some(t),
            // Just answered? Its record may still be in the buffer: write it out, look again.
            Ok(None) => {
                // Bounded: with the database down the writer may be retrying for a while.
                let flushed = app.gateway.recorder().flush();
                let _ = tokio::time::timeout(FLUSH_WAIT, flushed).await;
                db.feedback_target(&body.request_id).await.map_err(store)?
            }
            Err(e) => return Err(store(e)),
        };
        let allowed = match (&target, &caller) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(t), Some(p)) => t.key_id == p.key_id,
        };
        if !allowed {
            return Err(unknown_request(&body.request_id));
        }
        save(db, &body).await
    }
    .await;
    match result {
        Ok(()) => egress::json(
            &ctx.id,
            StatusCode::OK,
            &serde_json::json!({"status": "recorded"}),
            None,
        ),
        Err(e) => egress::error(&ctx.id, &e),
    }
}

fn validate(body: &FeedbackBody) -> Result<(), GatewayError> {
    if !body.score.is_finite() {
        return Err(GatewayError::invalid_request(
            "invalid_score",
            "score must be a finite number (e.g. 1 / -1, or 1 to 5)",
        ));
    }
    if body
        .comment
        .as_ref()
        .is_some_and(|c| c.len() > MAX_COMMENT_BYTES)
    {
        return Err(GatewayError::invalid_request(
            "comment_too_long",
            format!("comment is longer than {MAX_COMMENT_BYTES} bytes"),
        ));
    }
    Ok(())
}

async fn save(db: &Database, body: &FeedbackBody) -> Result<(), GatewayError> {
    let feedback = Feedback {
        request_id: &body.request_id,
        score: body.score,
        comment: body.comment.as_deref(),
        at_ms: unix_ms(),
    };
    match db.set_feedback(&feedback).await.map_err(store)? {
        true => Ok(()),
        false => Err(unknown_request(&body.request_id)),
    }
}

fn unknown_request(id: &str) -> GatewayError {
    GatewayError::new(
        404,
        "invalid_request_error",
        "request_not_found",
        format!(
            "no request \"{id}\" made with this key: send the x-request-id the gateway returned for it"
        ),
    )
}

fn no_database() -> GatewayError {
    GatewayError::new(
        503,
        "api_error",
        "no_database",
        "feedback is kept with the request records, and this gateway has no database (database.url is none)",
    )
}

fn store(e: switchyard_store::StoreError) -> GatewayError {
    tracing::error!(error = %e, "cannot read or write feedback");
    GatewayError::new(
        503,
        "api_error",
        "store_unavailable",
        "the request log cannot be reached right now; retry shortly",
    )
}
