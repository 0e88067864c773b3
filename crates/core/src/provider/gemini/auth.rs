//! Credentials of the Gemini adapter: which header each request carries, and, for Vertex AI
//! with a service account, the OAuth access token behind it.
//!
//! Three modes: the Gemini API's keys (`x-goog-api-key`, from the provider's key pool), Vertex
//! AI with static bearer tokens (the same pool, as `Authorization: Bearer`), and Vertex AI with
//! a service-account JSON key file. For the last, [`TokenSource`] signs an RS256 JWT with the
//! file's private key, exchanges it at the file's `token_uri` for an access token (the OAuth
//! 2.0 JWT-bearer grant), and keeps the token until a few minutes before it expires. Tokens
//! are per replica and never written anywhere; a 401 from Vertex drops the cached one, so the
//! next attempt fetches a fresh token. The private key, the JWT and the tokens never appear in
//! logs or error messages.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;

use crate::config::Timeouts;
use crate::error::{ErrorClass, ProviderError};
use crate::provider::http;

/// What Vertex AI asks a service account's token to allow.
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Google's token endpoint, for files that do not name one.
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Lifetime asked for in the JWT: Google's maximum.
const ASSERTION_LIFETIME_SECS: u64 = 3600;
/// A token is replaced this long before it expires, so that no request carries one that
/// expires in flight.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

/// How a request is authorized.
pub enum Credentials {
    /// Gemini API: a key of the pool in `x-goog-api-key`.
    ApiKey,
    /// Vertex AI: a static OAuth access token of the pool as `Authorization: Bearer`.
    StaticBearer,
    /// Vertex AI: access tokens minted from a service account.
    ServiceAccount(Box<TokenSource>),
}

/// The fields of a service-account key file that signing needs.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

struct AccessToken {
    token: String,
    refresh_after: Instant,
}

/// Access tokens of one service account, minted on demand and cached.
pub struct TokenSource {
    client_email: String,
    private_key_id: Option<String>,
    token_uri: String,
    key: RsaKeyPair,
    cached: Mutex<Option<AccessToken>>,
    /// Held while a token is being fetched, so that a burst of requests at expiry makes one
    /// exchange rather than one each. The cache itself is never locked across an await.
    refreshing: tokio::sync::Mutex<()>,
}

impl TokenSource {
    /// Reads a service-account key file (as downloaded from the Cloud console).
    pub fn from_file(path: &str) -> Result<TokenSource, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        TokenSource::from_json(&text).map_err(|e| format!("{path}: {e}"))
    }

    pub fn from_json(text: &str) -> Result<TokenSource, String> {
        let file: KeyFile = serde_json::from_str(text)
            .map_err(|e| format!("not a service-account key file: {e}"))?;
        if let Some(kind) = file.kind.as_deref().filter(|k| *k != "service_account") {
            return Err(format!(
                "the file is of type \"{kind}\"; only \"service_account\" key files are supported"
            ));
        }
        Ok(TokenSource {
            key: private_key(&file.private_key)?,
            client_email: file.client_email,
            private_key_id: file.private_key_id,
            token_uri: file
                .token_uri
                .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned()),
            cached: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// A valid access token: the cached one, or a fresh one from the token endpoint.
    pub async fn token(
        &self,
        provider: &str,
        client: &reqwest::Client,
        timeouts: &Timeouts,
    ) -> Result<String, ProviderError> {
        if let Some(token) = self.current() {
            return Ok(token);
        }
        let _gate = self.refreshing.lock().await;
        // Another request may have refreshed it while this one waited.
        if let Some(token) = self.current() {
            return Ok(token);
        }
        let fresh = self.exchange(provider, client, timeouts).await?;
        let token = fresh.token.clone();
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(fresh);
        Ok(token)
    }

    /// Forgets the cached token (Vertex rejected it).
    pub fn invalidate(&self) {
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn current(&self) -> Option<String> {
        let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        cached
            .as_ref()
            .filter(|t| Instant::now() < t.refresh_after)
            .map(|t| t.token.clone())
    }

    async fn exchange(
        &self,
        provider: &str,
        client: &reqwest::Client,
        timeouts: &Timeouts,
    ) -> Result<AccessToken, ProviderError> {
        let failed = |mut e: ProviderError| {
            // A refused grant is a credential problem whatever the status says.
            if matches!(
                e.class,
                ErrorClass::InvalidRequest | ErrorClass::NotFound | ErrorClass::Protocol
            ) {
                e.class = ErrorClass::Auth;
            }
            e.message = format!(
                "the service account's token exchange at {} failed: {}",
                self.token_uri, e.message
            );
            e
        };
        let assertion = self
            .assertion(crate::request::unix_secs())
            .map_err(|m| ProviderError::new(ErrorClass::Auth, provider, m))?;
        let body = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
        );
        let request = client
            .post(&self.token_uri)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body);
        let started = Instant::now();
        let response = http::send(provider, request, timeouts)
            .await
            .map_err(failed)?;
        let token: TokenResponse =
            http::read_json(provider, response, timeouts.idle, MAX_TOKEN_RESPONSE)
                .await
                .map_err(failed)?;
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(ASSERTION_LIFETIME_SECS));
        // Short-lived tokens are kept for half their life instead of lifetime − margin.
        let keep = lifetime
            .checked_sub(REFRESH_MARGIN)
            .filter(|k| *k >= lifetime / 2)
            .unwrap_or(lifetime / 2);
        Ok(AccessToken {
            token: token.access_token,
            refresh_after: started + keep,
        })
    }

    /// The signed JWT (`header.claims.signature`, each base64url) for the token exchange.
    pub fn assertion(&self, now_unix: u64) -> Result<String, String> {
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.private_key_id {
            header["kid"] = kid.clone().into();
        }
        let claims = serde_json::json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now_unix,
            "exp": now_unix + ASSERTION_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "cannot sign the service account's JWT".to_owned())?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// Reads the PEM private key of a key file: PKCS#8 (`BEGIN PRIVATE KEY`, what Google issues)
/// or PKCS#1 (`BEGIN RSA PRIVATE KEY`).
fn private_key(pem: &str) -> Result<RsaKeyPair, String> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("-----"))
        .collect();
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|_| "private_key is not a PEM-encoded key".to_owned())?;
    RsaKeyPair::from_pkcs8(&der)
        .or_else(|_| RsaKeyPair::from_der(&der))
        .map_err(|e| format!("private_key is not a usable RSA key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    /// A throwaway key, generated for the test, as a key file would hold it.
    fn key_file(key: &RsaKeyPair) -> String {
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(key).unwrap();
        let b64 = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        );
        serde_json::json!({
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "kid-1",
            "private_key": pem,
            "client_email": "gw@p.iam.gserviceaccount.com",
            "token_uri": "http://127.0.0.1:1/token",
        })
        .to_string()
    }

    fn part(jwt: &str, i: usize) -> Vec<u8> {
        URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(i).unwrap())
            .unwrap()
    }

    #[test]
    fn the_assertion_is_an_rs256_jwt_for_the_token_endpoint_that_verifies() {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let source = TokenSource::from_json(&key_file(&key)).unwrap();
        let jwt = source.assertion(1_700_000_000).unwrap();
        let header: serde_json::Value = serde_json::from_slice(&part(&jwt, 0)).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], "kid-1");
        let claims: serde_json::Value = serde_json::from_slice(&part(&jwt, 1)).unwrap();
        assert_eq!(claims["iss"], "gw@p.iam.gserviceaccount.com");
        assert_eq!(claims["aud"], "http://127.0.0.1:1/token");
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["exp"], 1_700_003_600u64);
        let (signed, _) = jwt.rsplit_once('.').unwrap();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key().as_ref())
            .verify(signed.as_bytes(), &part(&jwt, 2))
            .expect("the signature verifies with the public key");
    }

    #[test]
    fn key_files_that_cannot_sign_are_refused_without_echoing_the_key() {
        let bad = serde_json::json!({
            "type": "service_account", "client_email": "a@b",
            "private_key": "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ1dC1ub3QtYS1rZXk=\n-----END PRIVATE KEY-----\n",
        });
        let e = TokenSource::from_json(&bad.to_string()).err().unwrap();
        assert!(e.contains("not a usable RSA key"), "{e}");
        assert!(!e.contains("c2VjcmV0"), "{e}");
        let user =
            serde_json::json!({"type": "authorized_user", "client_email": "a", "private_key": ""});
        let e = TokenSource::from_json(&user.to_string()).err().unwrap();
        assert!(e.contains("authorized_user"), "{e}");
        assert!(TokenSource::from_file("/nonexistent/sa.json").is_err());
    }

    #[test]
    fn a_cached_token_is_served_until_it_is_invalidated() {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let source = TokenSource::from_json(&key_file(&key)).unwrap();
        assert_eq!(source.current(), None);
        *source.cached.lock().unwrap() = Some(AccessToken {
            token: "ya29.t".into(),
            refresh_after: Instant::now() + Duration::from_secs(60),
        });
        assert_eq!(source.current().as_deref(), Some("ya29.t"));
        source.invalidate();
        assert_eq!(source.current(), None);
        *source.cached.lock().unwrap() = Some(AccessToken {
            token: "old".into(),
            refresh_after: Instant::now() - Duration::from_secs(1),
        });
        assert_eq!(
            source.current(),
            None,
            "a token past its refresh time is not used"
        );
    }
}
