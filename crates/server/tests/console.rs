//! The console's sessions against a real gateway (served on a local port, SQLite in a temporary
//! file): signing in sets an HttpOnly, SameSite=Strict cookie; the cookie opens the admin API;
//! a change needs the session's CSRF token; a viewer reads but never changes; signed out,
//! every data endpoint answers 401; signing out ends the session; a sign-in that outlives
//! `console.session_ttl` is refused.

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

const ADMIN: &str = "sk-admin-console-test";
const VIEWER: &str = "sk-viewer-console-test";

struct Gateway {
    base: String,
    client: Client,
    dir: std::path::PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start(session_ttl: &str) -> Gateway {
    let dir = std::env::temp_dir().join(format!("sy-console-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let yaml = format!(
        r#"
auth: {{ admin_keys: ["{ADMIN}"], viewer_keys: ["{VIEWER}"] }}
database: {{ url: "sqlite://{db}" }}
console: {{ session_ttl: {session_ttl} }}
providers:
  demo: {{ kind: mock, mock: {{ text: "hi" }} }}
models:
  demo-model: {{ provider: demo }}
"#,
        db = dir.join("console.db").display()
    );
    let config = switchyard_core::Config::from_yaml(&yaml, &|_| None).unwrap();
    let built = switchyard_server::build(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(switchyard_server::serve(listener, built, async move {
        let _ = stopped.await;
    }));
    Gateway {
        base,
        client: Client::new(),
        dir,
        stop: Some(stop),
    }
}

/// A signed-in browser: its cookie and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

impl Gateway {
    async fn sign_in(&self, key: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/ui/api/session", self.base))
            .json(&json!({ "key": key }))
            .send()
            .await
            .unwrap()
    }

    async fn session(&self, key: &str) -> Session {
        let response = self.sign_in(key).await;
        assert_eq!(response.status(), StatusCode::OK);
        let set_cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        Session {
            cookie,
            csrf: body["csrf"].as_str().unwrap().to_owned(),
        }
    }

    /// `method path` with the session's cookie, and its CSRF token when `csrf` is given.
    async fn call(
        &self,
        method: Method,
        path: &str,
        session: Option<&Session>,
        csrf: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(s) = session {
            request = request.header("cookie", &s.cookie);
        }
        if let Some(token) = csrf {
            request = request.header("x-csrf-token", token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn the_cookie_is_http_only_strict_and_expires() {
    let gw = start("8h").await;
    let response = gw.sign_in(ADMIN).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("sy_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["role"], "admin");
    assert_eq!(body["actor"], "admin-0");
    assert!(body["csrf"].as_str().unwrap().len() >= 32);

    let behind_tls = gw
        .client
        .post(format!("{}/ui/api/session", gw.base))
        .header("x-forwarded-proto", "https")
        .json(&json!({ "key": ADMIN }))
        .send()
        .await
        .unwrap();
    let cookie = behind_tls.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");

    let wrong = gw.sign_in("sk-not-a-key").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get("set-cookie").is_none());
    let wrong: Value = wrong.json().await.unwrap();
    assert_eq!(code(&wrong), "invalid_admin_key");
}

#[tokio::test]
async fn a_session_past_its_ttl_is_refused() {
    let gw = start("1s").await;
    let s = gw.session(ADMIN).await;
    let (status, _) = gw
        .call(Method::GET, "/admin/keys", Some(&s), None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = gw
        .call(Method::GET, "/admin/keys", Some(&s), None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "not_signed_in");
    let (status, _) = gw
        .call(Method::GET, "/ui/api/session", Some(&s), None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn changes_need_the_csrf_token_and_an_admin() {
    let gw = start("8h").await;
    let admin = gw.session(ADMIN).await;
    let team = |id: &str| Some(json!({ "id": id }));

    let (status, body) = gw
        .call(Method::POST, "/admin/teams", Some(&admin), None, team("a"))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "csrf_token_invalid")
    );
    let (status, body) = gw
        .call(
            Method::POST,
            "/admin/teams",
            Some(&admin),
            Some("forged"),
            team("a"),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "csrf_token_invalid")
    );
    let csrf = admin.csrf.clone();
    let (status, _) = gw
        .call(
            Method::POST,
            "/admin/teams",
            Some(&admin),
            Some(&csrf),
            team("a"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, audit) = gw
        .call(Method::GET, "/admin/audit", Some(&admin), None, None)
        .await;
    assert_eq!(audit["data"][0]["actor"], "admin-0", "{audit}");

    // A viewer reads everything and changes nothing, with a cookie or with its key.
    let viewer = gw.session(VIEWER).await;
    let (status, body) = gw
        .call(Method::GET, "/admin/teams", Some(&viewer), None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"][0]["id"], "a");
    let vcsrf = viewer.csrf.clone();
    let (status, body) = gw
        .call(
            Method::POST,
            "/admin/teams",
            Some(&viewer),
            Some(&vcsrf),
            team("b"),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "read_only"));
    let by_key = gw
        .client
        .patch(format!("{}/admin/teams/a", gw.base))
        .bearer_auth(VIEWER)
        .json(&json!({ "name": "A" }))
        .send()
        .await
        .unwrap();
    assert_eq!(by_key.status(), StatusCode::FORBIDDEN);
    let (_, teams) = gw
        .call(Method::GET, "/admin/teams", Some(&admin), None, None)
        .await;
    assert_eq!(teams["data"].as_array().unwrap().len(), 1, "{teams}");
}

#[tokio::test]
async fn signed_out_every_data_endpoint_refuses_and_sign_out_ends_the_session() {
    let gw = start("8h").await;
    let endpoints = [
        "/ui/api/session",
        "/admin/health",
        "/admin/keys",
        "/admin/users",
        "/admin/teams",
        "/admin/audit",
        "/admin/budgets",
        "/admin/requests",
        "/admin/requests/some-id",
        "/admin/reports/usage",
        "/admin/reports/latency",
        "/admin/reports/events",
    ];
    for path in endpoints {
        let (status, _) = gw.call(Method::GET, path, None, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "GET {path} signed out");
    }
    let (status, _) = gw
        .call(Method::POST, "/admin/keys", None, None, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The pages themselves load signed out, with no data in them.
    let page = gw
        .client
        .get(format!("{}/ui", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");

    let s = gw.session(ADMIN).await;
    for path in endpoints {
        let (status, _) = gw.call(Method::GET, path, Some(&s), None, None).await;
        let expected = if path == "/admin/requests/some-id" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        assert_eq!(status, expected, "GET {path} signed in");
    }
    let (status, body) = gw
        .call(Method::DELETE, "/ui/api/session", Some(&s), None, None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, "csrf_token_invalid")
    );
    let csrf = s.csrf.clone();
    let (status, _) = gw
        .call(
            Method::DELETE,
            "/ui/api/session",
            Some(&s),
            Some(&csrf),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = gw
        .call(Method::GET, "/admin/keys", Some(&s), None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old cookie is dead");
}

#[tokio::test]
async fn failed_sign_ins_are_rate_limited() {
    let gw = start("8h").await;
    for _ in 0..10 {
        assert_eq!(gw.sign_in("guess").await.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = gw.sign_in(ADMIN).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
}
