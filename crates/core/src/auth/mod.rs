//! Auth: turns the credential a request presents into a [`Principal`], the identity every later
//! stage (limits, budgets, routing rules, records) keys on.
//!
//! [`Authenticator`] is the seam. [`StaticKeys`] reads `auth.api_keys` from the config;
//! [`keys::VirtualKeys`] resolves the keys issued through the admin API; [`KeyAuth`] asks
//! both, and admits a caller with no key as the anonymous principal only when
//! `auth.allow_anonymous` says so (the default for a gateway with no keys configured at all,
//! which is what a local or demo gateway wants).

pub mod keys;

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::admit::limits::Limits;
use crate::error::GatewayError;
use keys::{KEY_PREFIX, VirtualKeys};

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
    /// When the key stops working (a rotated key's grace period ends here too).
    pub expires_at_ms: Option<i64>,
    /// The limits of the key, its user and its team; `None` for static keys and anonymous.
    pub limits: Option<Arc<PrincipalLimits>>,
}

/// Every limit a virtual key's requests are held to, besides feature, model and global ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrincipalLimits {
    pub key: Limits,
    pub user: Option<Limits>,
    pub team: Option<Limits>,
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

/// The auth stage: static keys from the config, then virtual keys, then (if allowed) anonymous.
pub struct KeyAuth {
    pub static_keys: StaticKeys,
    pub virtual_keys: Option<Arc<VirtualKeys>>,
    pub allow_anonymous: bool,
}

impl KeyAuth {
    async fn check(&self, credential: Option<&str>) -> Result<Principal, GatewayError> {
        let Some(presented) = credential.filter(|c| !c.is_empty()) else {
            return if self.allow_anonymous {
                Ok(Principal::default())
            } else {
                Err(GatewayError::unauthorized(
                    "missing API key: send it as \"Authorization: Bearer <key>\"",
                ))
            };
        };
        if let Some(principal) = self.static_keys.find(presented) {
            return Ok(principal);
        }
        match &self.virtual_keys {
            Some(virtual_keys) if presented.starts_with(KEY_PREFIX) => {
                virtual_keys.authenticate(presented).await
            }
            // With no key required, a key that is not ours is ignored, as before keys existed.
            _ if self.allow_anonymous && self.static_keys.keys.is_empty() => {
                Ok(Principal::default())
            }
            _ => Err(keys::invalid_key()),
        }
    }
}

impl Authenticator for KeyAuth {
    fn authenticate<'a>(
        &'a self,
        credential: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Principal, GatewayError>> {
        Box::pin(self.check(credential))
    }
}

/// Bearer tokens listed in the config.
pub struct StaticKeys {
    keys: Vec<String>,
}

impl StaticKeys {
    pub fn new(keys: Vec<String>) -> Self {
        StaticKeys { keys }
    }

    /// The principal of a listed key, compared in constant time.
    pub fn find(&self, presented: &str) -> Option<Principal> {
        let mut found = None;
        for (i, key) in self.keys.iter().enumerate() {
            if constant_time_eq(presented.as_bytes(), key.as_bytes()) {
                found = Some(i);
            }
        }
        found.map(|i| Principal {
            key_id: Some(format!("static-{i}")),
            ..Principal::default()
        })
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

    fn auth(keys: &[&str], allow_anonymous: bool) -> KeyAuth {
        KeyAuth {
            static_keys: StaticKeys::new(keys.iter().map(|k| k.to_string()).collect()),
            virtual_keys: None,
            allow_anonymous,
        }
    }

    #[tokio::test]
    async fn no_keys_means_anonymous_and_keys_are_enforced() {
        let open = auth(&[], true);
        assert_eq!(open.check(None).await, Ok(Principal::default()));
        assert_eq!(open.check(Some("anything")).await, Ok(Principal::default()));
        let keyed = auth(&["sk-a", "sk-b"], false);
        assert_eq!(
            keyed.check(Some("sk-b")).await.unwrap().key_id.as_deref(),
            Some("static-1")
        );
        assert_eq!(keyed.check(Some("sk-c")).await.unwrap_err().status, 401);
        assert_eq!(keyed.check(None).await.unwrap_err().status, 401);
        // A virtual-looking key with no key store is simply invalid.
        assert_eq!(keyed.check(Some("sk-sy-x")).await.unwrap_err().status, 401);
    }
}
