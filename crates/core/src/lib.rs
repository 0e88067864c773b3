//! Switchyard's core: the request pipeline and its stages, in the order data flows, the provider
//! adapters, and the traits behind which state lives (with in-memory implementations).
//!
//! This crate names no web framework and no database: `switchyard-server` feeds it decoded
//! requests and encodes what it returns; `switchyard-store` implements its storage traits.

pub mod config;
pub mod error;
pub mod request;

// The stages, in pipeline order.
pub mod auth;
pub mod admit;
pub mod guard;
pub mod cache;
pub mod route;
pub mod health;
pub mod execute;
pub mod provider;
pub mod usage;
pub mod record;
pub mod account;
pub mod response_store;
pub mod webhook;

pub mod pipeline;

pub use config::Config;
pub use error::{ErrorClass, GatewayError, ProviderError};
pub use pipeline::{ChatResponse, Gateway, Served};
pub use request::{Endpoint, RequestContext};
