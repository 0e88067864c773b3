//! The web console at `/ui`: its pages and assets, embedded in the binary from
//! `crates/server/console/` (rust-embed; debug builds embed them too, so every build serves the
//! same files), and its sign-in endpoints under `/ui/api/session` ([`session`]).
//!
//! The pages hold no data: they load signed out (and show the sign-in form), then read
//! everything from the admin API with the session cookie. Every response here carries a
//! strict Content-Security-Policy (no inline script or style, nothing from another origin),
//! refuses framing and sends no referrer. Assets are revalidated by their ETag (the SHA-256
//! rust-embed computes at build time), so an upgraded binary never serves stale pages.
//!
//! What the pages show, and the admin API they call, are not this module's: see
//! `crates/server/console/` and [`crate::admin`].

pub mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use rust_embed::Embed;
use serde::Deserialize;
use switchyard_core::GatewayError;
use switchyard_core::request::new_request_id;

use crate::egress;
use crate::ingress::{AppState, Shared};
use session::SessionInfo;

/// The console's files, from `crates/server/console/`.
#[derive(Embed)]
#[folder = "console/"]
struct Assets;

/// The policy every console response carries: scripts, styles, images and API calls only from
/// this origin; no plugins, no framing, no form posts elsewhere.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route(
            "/ui/api/session",
            get(current_session).post(sign_in).delete(sign_out),
        )
        .route("/ui/api/{*rest}", get(unknown_api).post(unknown_api))
        .route("/ui/{*path}", get(asset))
}

/// Whether the console is served (`console.enabled`), read per request so a reload applies.
fn enabled(app: &AppState) -> bool {
    app.gateway.runtime().config.console.enabled
}

async fn index(State(app): Shared, headers: HeaderMap) -> Response {
    serve_file(&app, "index.html", &headers)
}

/// A file of the console; a path without an extension is a page of the single-page app and
/// gets `index.html`, which routes it in the browser.
async fn asset(State(app): Shared, Path(path): Path<String>, headers: HeaderMap) -> Response {
    let last = path.rsplit('/').next().unwrap_or_default();
    let name = if last.contains('.') {
        path.as_str()
    } else {
        "index.html"
    };
    serve_file(&app, name, &headers)
}

fn serve_file(app: &AppState, name: &str, headers: &HeaderMap) -> Response {
    if !enabled(app) {
        return disabled();
    }
    let Some(file) = Assets::get(name) else {
        let e = GatewayError::new(
            404,
            "invalid_request_error",
            "not_found",
            format!("the console has no file \"{name}\""),
        );
        return secured(egress::error(&new_request_id(), &e));
    };
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Body::from(file.data.into_owned()))
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type(file.metadata.mimetype())) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    // Revalidate every time: the ETag makes that a 304 with no body.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secured(response)
}

/// The `Content-Type` of a file: text is UTF-8.
fn content_type(mime: &str) -> String {
    let textual =
        mime.starts_with("text/") || mime.ends_with("javascript") || mime.ends_with("json");
    if textual && !mime.contains("charset") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    }
}

/// Adds the console's security headers to `response`.
pub fn secured(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn disabled() -> Response {
    let e = GatewayError::new(
        404,
        "invalid_request_error",
        "console_disabled",
        "the web console is turned off on this gateway (console.enabled: false)",
    );
    egress::error(&new_request_id(), &e)
}

fn fail(e: &GatewayError) -> Response {
    secured(egress::error(&new_request_id(), e))
}

fn ok(status: StatusCode, info: &SessionInfo) -> Response {
    secured(egress::json(&new_request_id(), status, info, None))
}

#[derive(Deserialize)]
struct SignIn {
    key: String,
}

/// `POST /ui/api/session {"key": …}`: opens a session and sets its cookie.
async fn sign_in(State(app): Shared, request: Request) -> Response {
    if !enabled(&app) {
        return disabled();
    }
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let (parts, body) = request.into_parts();
    let form: SignIn = match crate::ingress::read_json(&parts.headers, body, 64 * 1024).await {
        Ok(form) => form,
        Err(e) => return fail(&e),
    };
    let config = app.gateway.runtime().config.clone();
    let ttl = config.console.session_ttl;
    match (app.sessions).sign_in(&config.auth, form.key.trim(), ttl, client) {
        Ok((token, info)) => {
            let mut response = ok(StatusCode::OK, &info);
            let secure = session::over_https(&parts.headers);
            (response.headers_mut())
                .insert(header::SET_COOKIE, session::set_cookie(&token, ttl, secure));
            response
        }
        Err(e) => {
            if e.status == 401 {
                tracing::warn!(client = ?client, "console sign-in with a key that is not an admin or viewer key");
            }
            fail(&e)
        }
    }
}

/// `GET /ui/api/session`: the session of the cookie, or 401.
async fn current_session(State(app): Shared, headers: HeaderMap) -> Response {
    if !enabled(&app) {
        return disabled();
    }
    match signed_in(&app, &headers) {
        Some(info) => ok(StatusCode::OK, &info),
        None => fail(&signed_out()),
    }
}

/// `DELETE /ui/api/session`: ends the session (with its CSRF token) and clears the cookie.
async fn sign_out(State(app): Shared, headers: HeaderMap) -> Response {
    if !enabled(&app) {
        return disabled();
    }
    let Some(info) = signed_in(&app, &headers) else {
        return fail(&signed_out());
    };
    if !session::csrf_matches(&headers, &info) {
        return fail(&csrf_invalid());
    }
    if let Some(token) = session::token_from(&headers) {
        app.sessions.sign_out(token);
    }
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let secure = session::over_https(&headers);
    (response.headers_mut()).insert(header::SET_COOKIE, session::clear_cookie(secure));
    secured(response)
}

async fn unknown_api(State(app): Shared, headers: HeaderMap) -> Response {
    if signed_in(&app, &headers).is_none() {
        return fail(&signed_out());
    }
    fail(&GatewayError::new(
        404,
        "invalid_request_error",
        "unknown_endpoint",
        "the console's API is /ui/api/session; its data comes from /admin/…",
    ))
}

/// The live session of the request's cookie.
pub fn signed_in(app: &AppState, headers: &HeaderMap) -> Option<SessionInfo> {
    let token = session::token_from(headers)?;
    app.sessions.find(&app.gateway.runtime().config.auth, token)
}

pub fn signed_out() -> GatewayError {
    GatewayError::new(
        401,
        "authentication_error",
        "not_signed_in",
        "not signed in, or the session expired: sign in again at /ui with an admin key, or send \"Authorization: Bearer <admin key>\"",
    )
}

pub fn csrf_invalid() -> GatewayError {
    GatewayError::new(
        403,
        "permission_error",
        "csrf_token_invalid",
        "a change made with the console's session cookie needs the session's CSRF token in the X-CSRF-Token header (GET /ui/api/session returns it)",
    )
}
