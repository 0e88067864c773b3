//! Errors at the boundary: [`GatewayError`] is what a client sees (HTTP status, a stable
//! `type` and `code`, a message a user can act on); [`ProviderError`] is what an upstream call
//! produced, with the [`ErrorClass`] that decides what the gateway does next.
//!
//! Encoding an error into a dialect's body (OpenAI or Anthropic shape) is egress's job; this
//! module only says what the error is.

use std::time::Duration;

/// What kind of failure an upstream call was, whatever the vendor. The class, not the status,
/// decides retries and fallback (see `docs/architecture.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The provider rejected Switchyard's credential.
    Auth,
    /// Too many requests for this key right now.
    RateLimited,
    /// The account is out of quota or credit.
    Billing,
    /// 5xx, 529, "overloaded".
    Overloaded,
    /// No response in time (connect, first byte, or between chunks).
    Timeout,
    /// Could not connect, or the connection broke.
    Connection,
    /// The prompt does not fit the model's context window.
    ContextLength,
    /// The provider refused the content.
    ContentPolicy,
    /// The request itself is wrong; trying elsewhere will not help.
    InvalidRequest,
    /// The model or endpoint does not exist upstream.
    NotFound,
    /// The upstream answered something Switchyard cannot read.
    Protocol,
}

impl ErrorClass {
    /// A stable snake_case name, used in records and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Auth => "auth",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::Billing => "billing",
            ErrorClass::Overloaded => "overloaded",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Connection => "connection",
            ErrorClass::ContextLength => "context_length",
            ErrorClass::ContentPolicy => "content_policy",
            ErrorClass::InvalidRequest => "invalid_request",
            ErrorClass::NotFound => "not_found",
            ErrorClass::Protocol => "protocol",
        }
    }

    /// Classifies an upstream HTTP error from its status and message text. Several providers
    /// use 400 for context overflow and 429 for exhausted quota, so the text matters too.
    pub fn from_http(status: u16, error_type: &str, message: &str) -> ErrorClass {
        let text = format!("{error_type} {message}").to_ascii_lowercase();
        let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
        if has(&[
            "insufficient_quota",
            "billing",
            "credit balance",
            "quota exceeded",
            "exceeded your current quota",
            "spend limit",
        ]) && status != 401
        {
            return ErrorClass::Billing;
        }
        if has(&[
            "context_length_exceeded",
            "maximum context length",
            "prompt is too long",
            "context window",
            "input is too long",
            "too many tokens",
            "exceeds the maximum",
        ]) && (status == 400 || status == 413)
        {
            return ErrorClass::ContextLength;
        }
        if has(&["content_policy", "content_filter", "safety system"]) && status == 400 {
            return ErrorClass::ContentPolicy;
        }
        match status {
            401 | 403 => ErrorClass::Auth,
            402 => ErrorClass::Billing,
            404 => ErrorClass::NotFound,
            408 => ErrorClass::Timeout,
            413 => ErrorClass::ContextLength,
            429 => ErrorClass::RateLimited,
            400..=499 => ErrorClass::InvalidRequest,
            _ => ErrorClass::Overloaded,
        }
    }
}

/// The `upstream_code` of a [`ProviderError`] refusing a non-streamed body over its
/// configured cap, and the code the client sees for it.
pub const RESPONSE_TOO_LARGE: &str = "upstream_response_too_large";

/// A failed upstream call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{provider}: {message}")]
pub struct ProviderError {
    pub class: ErrorClass,
    /// The provider's name in the config.
    pub provider: String,
    /// The upstream HTTP status, when there was one.
    pub status: Option<u16>,
    /// The upstream's error `type`/`code`, when it gave one.
    pub upstream_code: Option<String>,
    /// Safe to show to the client: never contains a credential.
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    pub fn new(class: ErrorClass, provider: &str, message: impl Into<String>) -> Self {
        ProviderError {
            class,
            provider: provider.to_owned(),
            status: None,
            upstream_code: None,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// An error as the client sees it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct GatewayError {
    pub status: u16,
    /// The OpenAI-style `type`: `invalid_request_error`, `rate_limit_error`, …
    pub kind: &'static str,
    /// A stable machine-readable code: `model_not_found`, `body_too_large`, …
    pub code: String,
    pub message: String,
    pub param: Option<String>,
    pub retry_after: Option<Duration>,
    /// The caller's rate-limit state, sent as `x-ratelimit-*` headers with a 429.
    pub rate: Option<Box<crate::admit::RateInfo>>,
}

impl GatewayError {
    pub fn new(status: u16, kind: &'static str, code: &str, message: impl Into<String>) -> Self {
        GatewayError {
            status,
            kind,
            code: code.to_owned(),
            message: message.into(),
            param: None,
            retry_after: None,
            rate: None,
        }
    }

    pub fn with_code(mut self, code: &str) -> Self {
        self.code = code.to_owned();
        self
    }

    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_owned());
        self
    }

    pub fn invalid_request(code: &str, message: impl Into<String>) -> Self {
        GatewayError::new(400, "invalid_request_error", code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        GatewayError::new(401, "authentication_error", "invalid_api_key", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        GatewayError::new(500, "server_error", "internal_error", message)
    }

    /// The Anthropic error `type` that matches this error, for the Messages dialect.
    pub fn anthropic_type(&self) -> &'static str {
        match self.status {
            400 | 413 | 415 | 422 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            503 | 529 => "overloaded_error",
            504 => "timeout_error",
            _ => "api_error",
        }
    }
}

impl From<ProviderError> for GatewayError {
    /// Keeps the upstream's meaning: a 429 stays a 429 with its Retry-After, a bad request stays
    /// a 400 with the provider's explanation. A rejected credential is the gateway's problem, not
    /// the client's, so it becomes a 502 and the provider's text (which may echo part of the key)
    /// is not passed on.
    fn from(e: ProviderError) -> Self {
        let p = &e.provider;
        let upstream_code = e.upstream_code.clone();
        let (status, kind, code, message) = match e.class {
            ErrorClass::Auth => (
                502,
                "upstream_error",
                "upstream_auth_failed".to_owned(),
                format!(
                    "provider \"{p}\" rejected the gateway's credential; an operator must fix the provider key"
                ),
            ),
            ErrorClass::RateLimited => (
                429,
                "rate_limit_error",
                upstream_code.unwrap_or_else(|| "rate_limit_exceeded".into()),
                format!("provider \"{p}\" is rate limiting: {}", e.message),
            ),
            ErrorClass::Billing => (
                429,
                "insufficient_quota",
                upstream_code.unwrap_or_else(|| "insufficient_quota".into()),
                format!(
                    "provider \"{p}\" reports exhausted quota or credit: {}",
                    e.message
                ),
            ),
            ErrorClass::Overloaded => (
                e.status
                    .filter(|s| (500..600).contains(s) && *s != 501)
                    .map_or(502, |_| 503),
                "upstream_error",
                upstream_code.unwrap_or_else(|| "upstream_unavailable".into()),
                format!("provider \"{p}\" failed: {}", e.message),
            ),
            ErrorClass::Timeout => (
                504,
                "timeout_error",
                "upstream_timeout".into(),
                format!("provider \"{p}\" timed out: {}", e.message),
            ),
            ErrorClass::Connection => (
                502,
                "upstream_error",
                "upstream_connection_failed".into(),
                format!("provider \"{p}\" is unreachable: {}", e.message),
            ),
            ErrorClass::Protocol if upstream_code.as_deref() == Some(RESPONSE_TOO_LARGE) => (
                502,
                "upstream_error",
                RESPONSE_TOO_LARGE.into(),
                format!("provider \"{p}\": {}", e.message),
            ),
            ErrorClass::Protocol => (
                502,
                "upstream_error",
                "upstream_protocol_error".into(),
                format!(
                    "provider \"{p}\" sent a response the gateway cannot read: {}",
                    e.message
                ),
            ),
            ErrorClass::ContextLength => (
                400,
                "invalid_request_error",
                "context_length_exceeded".into(),
                e.message.clone(),
            ),
            ErrorClass::ContentPolicy => (
                400,
                "invalid_request_error",
                "content_policy_violation".into(),
                e.message.clone(),
            ),
            ErrorClass::InvalidRequest => (
                e.status.filter(|s| (400..500).contains(s)).unwrap_or(400),
                "invalid_request_error",
                upstream_code.unwrap_or_else(|| "invalid_request".into()),
                e.message.clone(),
            ),
            ErrorClass::NotFound => (
                404,
                "invalid_request_error",
                upstream_code.unwrap_or_else(|| "model_not_found".into()),
                format!("provider \"{p}\": {}", e.message),
            ),
        };
        GatewayError {
            status,
            kind,
            code,
            message,
            param: None,
            retry_after: e.retry_after,
            rate: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_reads_text_as_well_as_status() {
        use ErrorClass::*;
        let cases = [
            (401, "invalid_api_key", "Incorrect API key provided", Auth),
            (
                429,
                "rate_limit_exceeded",
                "Rate limit reached",
                RateLimited,
            ),
            (
                429,
                "insufficient_quota",
                "You exceeded your current quota",
                Billing,
            ),
            (
                400,
                "invalid_request_error",
                "prompt is too long: 210000 tokens > 200000 maximum",
                ContextLength,
            ),
            (
                400,
                "context_length_exceeded",
                "This model's maximum context length is 8192 tokens",
                ContextLength,
            ),
            (
                400,
                "invalid_request_error",
                "messages: field required",
                InvalidRequest,
            ),
            (529, "overloaded_error", "Overloaded", Overloaded),
            (503, "", "", Overloaded),
            (404, "not_found_error", "model: claude-9", NotFound),
            (
                400,
                "billing_error",
                "Your credit balance is too low",
                Billing,
            ),
        ];
        for (status, kind, msg, want) in cases {
            assert_eq!(
                ErrorClass::from_http(status, kind, msg),
                want,
                "{status} {kind} {msg}"
            );
        }
    }

    #[test]
    fn upstream_meaning_survives_but_credentials_do_not() {
        let mut e = ProviderError::new(ErrorClass::RateLimited, "oai", "slow down");
        e.retry_after = Some(Duration::from_secs(7));
        let g = GatewayError::from(e);
        assert_eq!(
            (g.status, g.retry_after),
            (429, Some(Duration::from_secs(7)))
        );

        let e = ProviderError::new(
            ErrorClass::Auth,
            "oai",
            "Incorrect API key provided: sk-abc***xyz",
        );
        let g = GatewayError::from(e);
        assert_eq!(g.status, 502);
        assert!(!g.message.contains("sk-abc"));
    }
}
