//! Auth: turns the credential a request presents into a [`Principal`], the identity every later
//! stage (limits, budgets, routing rules, records) keys on.
//!
//! [`Authenticator`] is the seam; [`StaticKeys`] is the implementation that reads `auth.api_keys`
//! from the config. With no keys configured every caller is the anonymous principal, which is
//! what a local or demo gateway wants. Virtual keys held in the store plug in behind the same
//! trait.

use futures_util::future::BoxFuture;

use crate::error::GatewayError;

/// Who is calling, and what they may do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Principal {
    /// Stable id of the key used (never the key itself); `None` when anonymous.
    pub key_id: Option<String>,
    pub user: Option<String>,
    pub team: Option<String>,
    pub tags: Vec<String>,
    /// Models and aliases this principal may call; `None` means all.
    pub allowed_models: Option<Vec<String>>,
}

impl Principal {
    pub fn may_use(&self, model: &str) -> bool {
        self.allowed_models
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|m| m == model))
    }
}

pub trait Authenticator: Send + Sync {
    fn authenticate<'a>(
        &'a self,
        credential: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Principal, GatewayError>>;
}

/// Bearer tokens listed in the config.
pub struct StaticKeys {
    keys: Vec<String>,
}

impl StaticKeys {
    pub fn new(keys: Vec<String>) -> Self {
        StaticKeys { keys }
    }

    fn check(&self, credential: Option<&str>) -> Result<Principal, GatewayError> {
        if self.keys.is_empty() {
            return Ok(Principal::default());
        }
        let Some(presented) = credential.filter(|c| !c.is_empty()) else {
            return Err(GatewayError::unauthorized(
                "missing API key: send it as \"Authorization: Bearer <key>\"",
            ));
        };
        // Compare against every key in constant time so that timing reveals nothing.
        let mut found = None;
        for (i, key) in self.keys.iter().enumerate() {
            if constant_time_eq(presented.as_bytes(), key.as_bytes()) {
                found = Some(i);
            }
        }
        match found {
            Some(i) => Ok(Principal {
                key_id: Some(format!("static-{i}")),
                ..Principal::default()
            }),
            None => Err(GatewayError::unauthorized(
                "invalid API key: check the key your client sends to Switchyard",
            )),
        }
    }
}

impl Authenticator for StaticKeys {
    fn authenticate<'a>(
        &'a self,
        credential: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Principal, GatewayError>> {
        Box::pin(std::future::ready(self.check(credential)))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_keys_means_anonymous_and_keys_are_enforced() {
        assert_eq!(
            StaticKeys::new(vec![]).check(None),
            Ok(Principal::default())
        );
        let auth = StaticKeys::new(vec!["sk-a".into(), "sk-b".into()]);
        assert_eq!(
            auth.check(Some("sk-b")).unwrap().key_id.as_deref(),
            Some("static-1")
        );
        assert_eq!(auth.check(Some("sk-c")).unwrap_err().status, 401);
        assert_eq!(auth.check(None).unwrap_err().status, 401);
    }
}
