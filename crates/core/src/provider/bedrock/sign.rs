//! AWS Signature Version 4 for Bedrock requests: where the credentials come from (the config's
//! `aws` section, else the standard `AWS_*` environment variables) and the one function that signs
//! a request, [`Signer::sign`], built on the `aws-sigv4` crate.
//!
//! The crate's default settings are the ones Bedrock needs: the path is signed double-encoded (a
//! model id `…v1:0` goes on the wire as `…v1%3A0` and is signed as `…v1%253A0`), and a session
//! token is signed as `x-amz-security-token`. Hand-rolled signers tend to get exactly that wrong,
//! which is why the crate does the arithmetic. Bedrock API keys (bearer tokens) skip all of this.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

use super::AwsConfig;

/// The SigV4 service name of the Bedrock Runtime API.
pub const SERVICE: &str = "bedrock";

/// Static credentials for SigV4.
#[derive(Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for StaticCredentials {
    /// Names the key id only: the secret and the token never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// SigV4 credentials from the config, else from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
/// `AWS_SESSION_TOKEN` (looked up through `env`). `Ok(None)`: neither names any. A half-given
/// pair is an error rather than a silent fall-through to other credentials.
pub fn credentials(
    aws: Option<&AwsConfig>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<StaticCredentials>, String> {
    let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let from_config = aws.map(|a| {
        (
            non_empty(a.access_key_id.clone()),
            non_empty(a.secret_access_key.clone()),
            non_empty(a.session_token.clone()),
        )
    });
    let (id, secret, token, origin) = match from_config {
        Some((id, secret, token)) if id.is_some() || secret.is_some() => (
            id,
            secret,
            token,
            "aws.access_key_id / aws.secret_access_key",
        ),
        _ => (
            non_empty(env("AWS_ACCESS_KEY_ID")),
            non_empty(env("AWS_SECRET_ACCESS_KEY")),
            non_empty(env("AWS_SESSION_TOKEN")),
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
        ),
    };
    match (id, secret) {
        (None, None) => Ok(None),
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(StaticCredentials {
            access_key_id,
            secret_access_key,
            session_token: token,
        })),
        _ => Err(format!(
            "{origin}: both the access key id and the secret access key are needed"
        )),
    }
}

/// Signs requests for one region and service with one set of credentials.
#[derive(Debug, Clone)]
pub struct Signer {
    credentials: Credentials,
    region: String,
    service: String,
}

impl Signer {
    pub fn new(credentials: StaticCredentials, region: &str, service: &str) -> Self {
        Signer {
            credentials: Credentials::new(
                credentials.access_key_id,
                credentials.secret_access_key,
                credentials.session_token,
                None,
                "switchyard-config",
            ),
            region: region.to_owned(),
            service: service.to_owned(),
        }
    }

    /// The headers to add to a request so that it is signed: `x-amz-date`, `authorization` and,
    /// with temporary credentials, `x-amz-security-token`. `url` is the URL as it goes on the
    /// wire (already percent-encoded once); `headers` are the request's headers to sign besides
    /// `host`, which is taken from `url`.
    pub fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        time: SystemTime,
    ) -> Result<Vec<(&'static str, String)>, String> {
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("cannot sign the request: {e}"))?
            .into();
        let request = SignableRequest::new(
            method,
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| format!("cannot sign the request: {e}"))?;
        let (instructions, _signature) = sign(request, &params)
            .map_err(|e| format!("cannot sign the request: {e}"))?
            .into_parts();
        let (signed, _query) = instructions.into_parts();
        Ok(signed
            .into_iter()
            .map(|h| (h.name(), h.value().to_owned()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    use hmac::{KeyInit, Mac};
    use sha2::{Digest, Sha256};

    /// 2015-08-30T12:36:00Z, the date of the AWS SigV4 test suite.
    fn suite_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn suite_signer() -> Signer {
        let credentials = StaticCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        Signer::new(credentials, "us-east-1", "service")
    }

    fn header<'a>(signed: &'a [(&'static str, String)], name: &str) -> &'a str {
        signed
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header in {signed:?}"))
    }

    #[test]
    fn reproduces_the_aws_test_suite_get_vanilla() {
        let signed = suite_signer()
            .sign(
                "GET",
                "https://example.amazonaws.com/",
                &[],
                b"",
                suite_time(),
            )
            .unwrap();
        assert_eq!(header(&signed, "x-amz-date"), "20150830T123600Z");
        assert_eq!(
            header(&signed, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn reproduces_the_aws_test_suite_post_x_www_form_urlencoded() {
        let signed = suite_signer()
            .sign(
                "POST",
                "https://example.amazonaws.com/",
                &[("content-type", "application/x-www-form-urlencoded")],
                b"Param1=value1",
                suite_time(),
            )
            .unwrap();
        assert_eq!(
            header(&signed, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        );
    }

    fn hmac(key: &[u8], data: &str) -> Vec<u8> {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// The signature AWS computes for a Bedrock call whose path holds an encoded `:`, built
    /// step by step from the SigV4 specification, independently of the crate.
    fn expected_bedrock_signature(wire_path: &str, body: &[u8], token: &str) -> String {
        let canonical_uri = wire_path.replace('%', "%25");
        let canonical = format!(
            "POST\n{canonical_uri}\n\ncontent-type:application/json\n\
             host:bedrock-runtime.us-east-1.amazonaws.com\nx-amz-date:20150830T123600Z\n\
             x-amz-security-token:{token}\n\n\
             content-type;host;x-amz-date;x-amz-security-token\n{}",
            hex::encode(Sha256::digest(body))
        );
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/bedrock/aws4_request\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let mut key = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830");
        for part in ["us-east-1", "bedrock", "aws4_request"] {
            key = hmac(&key, part);
        }
        hex::encode(hmac(&key, &to_sign))
    }

    #[test]
    fn a_model_id_with_a_colon_is_signed_double_encoded_with_its_session_token() {
        let credentials = StaticCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("TOKEN/with+chars".into()),
        };
        let signer = Signer::new(credentials, "us-east-1", SERVICE);
        let path = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse";
        let body = br#"{"messages":[]}"#;
        let signed = signer
            .sign(
                "POST",
                &format!("https://bedrock-runtime.us-east-1.amazonaws.com{path}"),
                &[("content-type", "application/json")],
                body,
                suite_time(),
            )
            .unwrap();
        assert_eq!(header(&signed, "x-amz-security-token"), "TOKEN/with+chars");
        let auth = header(&signed, "authorization");
        let want = expected_bedrock_signature(path, body, "TOKEN/with+chars");
        assert!(
            auth.ends_with(&format!("Signature={want}")),
            "{auth}\nwanted signature {want}"
        );
        assert!(auth.contains("/us-east-1/bedrock/aws4_request"), "{auth}");
    }

    #[test]
    fn credentials_come_from_the_config_else_the_environment() {
        let env = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKENV".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret-env".to_owned()),
            "AWS_SESSION_TOKEN" => Some("token-env".to_owned()),
            _ => None,
        };
        let from_env = credentials(None, &env).unwrap().unwrap();
        assert_eq!(from_env.access_key_id, "AKENV");
        assert_eq!(from_env.session_token.as_deref(), Some("token-env"));

        let config = AwsConfig {
            access_key_id: Some("AKCONF".into()),
            secret_access_key: Some("secret-conf".into()),
            ..Default::default()
        };
        let from_config = credentials(Some(&config), &env).unwrap().unwrap();
        assert_eq!(from_config.access_key_id, "AKCONF");
        assert_eq!(
            from_config.session_token, None,
            "the environment's token belongs to the environment's key"
        );
        assert!(!format!("{from_config:?}").contains("secret-conf"));

        let half = AwsConfig {
            access_key_id: Some("AKCONF".into()),
            ..Default::default()
        };
        assert!(credentials(Some(&half), &env).is_err());
        assert!(credentials(None, &|_| None).unwrap().is_none());
    }
}
