//! The gateway under test: started in-process on a port of its own from a YAML config, and
//! the calls the tests make to it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_core::Config;
use switchyard_server::ingress::AppState;

use crate::upstream::Upstream;

/// Small backoffs keep the retries fast; tests override what they need.
pub const FAST_RETRY: &str = "{ backoff: 1ms, max_backoff: 5ms }";

/// An upstream as the gateway sees it: a provider `p-<name>` that reaches it and a model
/// `<name>` served by that provider, each with optional extra fields (YAML flow style).
pub struct Deployment<'a> {
    up: &'a Upstream,
    provider: &'a str,
    model: &'a str,
}

pub fn deployment(up: &Upstream) -> Deployment<'_> {
    Deployment {
        up,
        provider: "",
        model: "",
    }
}

impl<'a> Deployment<'a> {
    /// Extra fields of the provider, e.g. `api_keys: [a, b]`.
    pub fn provider(self, extra: &'a str) -> Self {
        Deployment {
            provider: extra,
            ..self
        }
    }

    /// Extra fields of the model, e.g. `context_window: 8192`.
    pub fn model(self, extra: &'a str) -> Self {
        Deployment {
            model: extra,
            ..self
        }
    }
}

/// A config with a provider and a model for each of `deployments`, then `rest` (routes,
/// resilience, server settings).
pub fn config(deployments: &[Deployment], rest: &str) -> String {
    let providers: String = deployments
        .iter()
        .map(|d| provider(d.up, d.provider))
        .collect();
    let models: String = deployments.iter().map(|d| model(d.up, d.model)).collect();
    format!("providers:\n{providers}models:\n{models}{rest}")
}

/// A provider entry for `up`, with optional extra fields.
pub fn provider(up: &Upstream, extra: &str) -> String {
    format!(
        "  p-{}: {{ kind: openai_compatible, base_url: \"{}\"{}{} }}\n",
        up.name,
        up.url(),
        if extra.is_empty() { "" } else { ", " },
        extra
    )
}

/// A model entry named after `up`, served by its provider.
pub fn model(up: &Upstream, extra: &str) -> String {
    format!(
        "  {}: {{ provider: p-{}{}{} }}\n",
        up.name,
        up.name,
        if extra.is_empty() { "" } else { ", " },
        extra
    )
}

pub struct Gateway {
    pub url: String,
    client: reqwest::Client,
    pub state: Arc<AppState>,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The upstream that served, from the content it answered with.
    pub fn served_by(&self) -> String {
        let content = self.body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_else(|| panic!("no content in {}", self.body));
        content
            .strip_prefix("served by ")
            .unwrap_or(content)
            .to_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

pub async fn start_gateway(config: Config) -> Gateway {
    let built = switchyard_server::build(config).await.unwrap();
    let state = built.state.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(switchyard_server::serve(
        listener,
        built,
        std::future::pending(),
    ));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    Gateway { url, client, state }
}

/// A gateway for a YAML config; `records` are turned off.
pub async fn gateway(yaml: &str) -> Gateway {
    let yaml = format!("{yaml}\ndatabase: {{ url: none }}\n");
    let config = Config::from_yaml(&yaml, &|_| None)
        .unwrap_or_else(|e| panic!("bad test config: {e}\n{yaml}"));
    start_gateway(config).await
}

pub fn chat_body(model: &str, prompt: &str, stream: bool) -> Value {
    json!({
        "model": model, "stream": stream,
        "messages": [{"role": "user", "content": prompt}]
    })
}

impl Gateway {
    pub async fn send(&self, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut rb = self
            .client
            .post(format!("{}/v1/chat/completions", self.url))
            .json(body);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        rb.send().await.unwrap()
    }

    pub async fn chat_full(&self, model: &str, prompt: &str, headers: &[(&str, &str)]) -> Reply {
        let response = self.send(&chat_body(model, prompt, false), headers).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn chat(&self, model: &str) -> Reply {
        self.chat_full(model, "Say hi.", &[]).await
    }

    /// A request that must succeed; returns who served it.
    pub async fn served(&self, model: &str) -> String {
        let r = self.chat(model).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.served_by()
    }

    /// A streamed request: the status and the whole SSE text.
    pub async fn stream(&self, model: &str) -> (u16, String) {
        let response = self.send(&chat_body(model, "Say hi.", true), &[]).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    pub async fn admin_health(&self) -> Value {
        self.client
            .get(format!("{}/admin/health", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn breaker(&self, deployment: &str) -> String {
        let h = self.admin_health().await;
        h["deployments"][deployment]["breaker"]
            .as_str()
            .unwrap_or_else(|| panic!("no breaker for {deployment} in {h}"))
            .to_owned()
    }
}

/// The content of an SSE text, concatenated from its `delta.content`s.
pub fn sse_content(text: &str) -> String {
    let mut out = String::new();
    for frame in text.split("\n\n") {
        let Some(data) = frame.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
        assert!(v.get("error").is_none(), "an error frame: {text}");
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            out.push_str(c);
        }
    }
    out
}

/// Polls `cond` every 20 ms for at most `limit`.
pub async fn eventually(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}
