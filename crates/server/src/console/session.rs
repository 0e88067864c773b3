//! Console sessions: signing in with an admin or viewer key, the `sy_session` cookie, the CSRF
//! token every change made with that cookie must carry, the two roles, and the rate limit on
//! failed sign-ins.
//!
//! Sessions live in memory, in this replica. The cookie holds a random 256-bit token; the
//! server keeps only its SHA-256, so a memory dump of sessions does not hand out live cookies.
//! Why not signed stateless cookies: signing out must end a session at once, which a stateless
//! cookie cannot do without a shared revocation list, and a console has a handful of users, so
//! signing in again after a restart (or on another replica without sticky sessions) is cheap.
//! A session also remembers a fingerprint of the key it was opened with: removing that key from
//! the config (and reloading) ends its sessions at their next request.
//!
//! This module does not decide which endpoint needs what: [`crate::admin`] asks it who is
//! calling, and [`super`] serves the sign-in endpoints.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use switchyard_core::GatewayError;
use switchyard_core::config::AuthConfig;
use switchyard_core::request::unix_ms;

/// The cookie's name.
pub const COOKIE: &str = "sy_session";
/// The header that carries the CSRF token on a change.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Failed sign-ins one client address may make per [`SIGN_IN_WINDOW`].
pub const MAX_FAILED_SIGN_INS: u32 = 10;
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(60);
/// Sessions kept at most; past it the oldest are dropped (a flood of sign-ins cannot grow
/// memory without bound).
const MAX_SESSIONS: usize = 10_000;

/// What a signed-in person may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything the admin API offers.
    Admin,
    /// Reads only: every change is refused with 403 `read_only`.
    Viewer,
}

/// A live session, as the console sees it (`GET /ui/api/session`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionInfo {
    pub actor: String,
    pub role: Role,
    pub csrf: String,
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone)]
struct Session {
    info: SessionInfo,
    /// SHA-256 of the key the session was opened with.
    key_fingerprint: [u8; 32],
}

/// The sessions of this replica and the failed sign-ins per client address.
#[derive(Default)]
pub struct Sessions {
    by_token_hash: Mutex<HashMap<[u8; 32], Session>>,
    failures: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

/// Which configured key `key` is, and so who acts and with which role.
pub fn identify_key(auth: &AuthConfig, key: &str) -> Option<(String, Role)> {
    if key.is_empty() {
        return None;
    }
    let find = |keys: &[String]| keys.iter().position(|k| constant_time_eq(k, key));
    if let Some(i) = find(&auth.admin_keys) {
        return Some((format!("admin-{i}"), Role::Admin));
    }
    find(&auth.viewer_keys).map(|i| (format!("viewer-{i}"), Role::Viewer))
}

impl Sessions {
    /// Opens a session for `key` if it is an admin or viewer key. Returns the cookie's token
    /// and the session. `client` is the caller's address, for the rate limit on failures.
    pub fn sign_in(
        &self,
        auth: &AuthConfig,
        key: &str,
        ttl: Duration,
        client: Option<IpAddr>,
    ) -> Result<(String, SessionInfo), GatewayError> {
        let now = unix_ms();
        if let Some(wait) = self.locked_out(client, now) {
            return Err(too_many_sign_ins(wait));
        }
        let Some((actor, role)) = identify_key(auth, key) else {
            self.count_failure(client, now);
            return Err(GatewayError::new(
                401,
                "authentication_error",
                "invalid_admin_key",
                "that key is not an admin or viewer key of this gateway (auth.admin_keys, auth.viewer_keys); virtual keys cannot sign in to the console",
            ));
        };
        let token = random_hex();
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let info = SessionInfo {
            actor,
            role,
            csrf: random_hex(),
            expires_at_ms: now.saturating_add(ttl_ms),
        };
        let session = Session {
            info: info.clone(),
            key_fingerprint: sha256(key),
        };
        let mut sessions = lock(&self.by_token_hash);
        sessions.retain(|_, s| s.info.expires_at_ms > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = (sessions.iter())
                .min_by_key(|(_, s)| s.info.expires_at_ms)
                .map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(sha256(&token), session);
        Ok((token, info))
    }

    /// The live session of `token`: not expired, and its key still configured with the same
    /// role (a key removed from the config ends its sessions).
    pub fn find(&self, auth: &AuthConfig, token: &str) -> Option<SessionInfo> {
        let hash = sha256(token);
        let mut sessions = lock(&self.by_token_hash);
        let session = sessions.get(&hash)?;
        let still_valid = session.info.expires_at_ms > unix_ms()
            && key_still_configured(auth, &session.key_fingerprint, session.info.role);
        if !still_valid {
            sessions.remove(&hash);
            return None;
        }
        Some(session.info.clone())
    }

    /// Ends the session of `token`.
    pub fn sign_out(&self, token: &str) {
        lock(&self.by_token_hash).remove(&sha256(token));
    }

    /// How long `client` must wait before trying again, when it failed too often.
    fn locked_out(&self, client: Option<IpAddr>, now: i64) -> Option<Duration> {
        let client = client?;
        let failures = lock(&self.failures);
        let (since, count) = failures.get(&client)?;
        let window_ms = SIGN_IN_WINDOW.as_millis() as i64;
        let ends = since + window_ms;
        (*count >= MAX_FAILED_SIGN_INS && ends > now)
            .then(|| Duration::from_millis(u64::try_from(ends - now).unwrap_or(0)))
    }

    fn count_failure(&self, client: Option<IpAddr>, now: i64) {
        let Some(client) = client else { return };
        let window_ms = SIGN_IN_WINDOW.as_millis() as i64;
        let mut failures = lock(&self.failures);
        failures.retain(|_, (since, _)| *since + window_ms > now);
        let entry = failures.entry(client).or_insert((now, 0));
        entry.1 = entry.1.saturating_add(1);
    }
}

fn key_still_configured(auth: &AuthConfig, fingerprint: &[u8; 32], role: Role) -> bool {
    let keys = match role {
        Role::Admin => &auth.admin_keys,
        Role::Viewer => &auth.viewer_keys,
    };
    keys.iter().any(|k| sha256(k) == *fingerprint)
}

fn too_many_sign_ins(wait: Duration) -> GatewayError {
    let mut e = GatewayError::new(
        429,
        "rate_limit_error",
        "sign_in_rate_limited",
        format!(
            "too many failed sign-ins from this address: try again in {} s",
            wait.as_secs().max(1)
        ),
    );
    e.retry_after = Some(wait.max(Duration::from_secs(1)));
    e
}

/// The session token in the request's `Cookie` header(s), if any.
pub fn token_from(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| value)
}

/// Whether the client reached the gateway over HTTPS (directly or through a proxy that says
/// so): the cookie is then marked `Secure`.
pub fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(token: &str, ttl: Duration, secure: bool) -> HeaderValue {
    cookie_header(token, ttl.as_secs(), secure)
}

/// `Set-Cookie` that makes the browser forget the session.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    cookie_header("", 0, secure)
}

fn cookie_header(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie =
        format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}");
    // The token is hex: the header is always valid.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether `presented` (the `X-CSRF-Token` header) is the session's token.
pub fn csrf_matches(headers: &HeaderMap, session: &SessionInfo) -> bool {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|presented| constant_time_eq(presented.trim(), &session.csrf))
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> AuthConfig {
        AuthConfig {
            admin_keys: vec!["admin-secret".into()],
            viewer_keys: vec!["viewer-secret".into()],
            ..AuthConfig::default()
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn keys_sign_in_with_their_role() {
        let sessions = Sessions::default();
        let (token, admin) = sessions
            .sign_in(&auth(), "admin-secret", HOUR, None)
            .unwrap();
        assert_eq!((admin.actor.as_str(), admin.role), ("admin-0", Role::Admin));
        assert_eq!(sessions.find(&auth(), &token), Some(admin.clone()));
        let (_, viewer) = sessions
            .sign_in(&auth(), "viewer-secret", HOUR, None)
            .unwrap();
        assert_eq!(viewer.role, Role::Viewer);
        assert_ne!(admin.csrf, viewer.csrf);
        let wrong = sessions
            .sign_in(&auth(), "sk-sy-virtual", HOUR, None)
            .unwrap_err();
        assert_eq!(wrong.status, 401);
        assert_eq!(sessions.find(&auth(), "not-a-token"), None);
    }

    #[test]
    fn sessions_end_on_expiry_sign_out_and_key_removal() {
        let sessions = Sessions::default();
        let (token, _) = sessions
            .sign_in(&auth(), "admin-secret", Duration::ZERO, None)
            .unwrap();
        assert_eq!(sessions.find(&auth(), &token), None, "expired");
        let (token, _) = sessions
            .sign_in(&auth(), "admin-secret", HOUR, None)
            .unwrap();
        sessions.sign_out(&token);
        assert_eq!(sessions.find(&auth(), &token), None, "signed out");
        let (token, _) = sessions
            .sign_in(&auth(), "admin-secret", HOUR, None)
            .unwrap();
        let mut reloaded = auth();
        reloaded.admin_keys = vec!["a-new-admin-key".into()];
        assert_eq!(sessions.find(&reloaded, &token), None, "key removed");
    }

    #[test]
    fn failed_sign_ins_are_limited_per_address() {
        let sessions = Sessions::default();
        let me: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..MAX_FAILED_SIGN_INS {
            let e = sessions
                .sign_in(&auth(), "guess", HOUR, Some(me))
                .unwrap_err();
            assert_eq!(e.status, 401);
        }
        let e = sessions
            .sign_in(&auth(), "admin-secret", HOUR, Some(me))
            .unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (429, "sign_in_rate_limited"));
        assert!(e.retry_after.is_some());
        assert!(
            sessions
                .sign_in(&auth(), "admin-secret", HOUR, Some(other))
                .is_ok()
        );
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_scoped() {
        let cookie = set_cookie("abc", HOUR, false);
        assert_eq!(
            cookie.to_str().unwrap(),
            "sy_session=abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=3600"
        );
        assert!(
            set_cookie("abc", HOUR, true)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
        assert!(clear_cookie(false).to_str().unwrap().contains("Max-Age=0"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sy_session=tok; b=2"),
        );
        assert_eq!(token_from(&headers), Some("tok"));
    }
}
