//! Cache: answers a request from a previous identical (exact) or similar enough (semantic)
//! request without calling a provider.
//!
//! [`ResponseCache`] is the seam the pipeline calls before routing and after a successful
//! non-streamed answer. [`NoCache`], today's default, never hits and stores nothing.

use futures_util::future::BoxFuture;
use switchyard_wire::openai::{ChatCompletionRequest, ChatCompletionResponse};

pub trait ResponseCache: Send + Sync {
    fn lookup<'a>(
        &'a self,
        request: &'a ChatCompletionRequest,
    ) -> BoxFuture<'a, Option<ChatCompletionResponse>>;

    fn store<'a>(
        &'a self,
        request: &'a ChatCompletionRequest,
        response: &'a ChatCompletionResponse,
    ) -> BoxFuture<'a, ()>;

    /// Whether lookups can ever hit; lets the pipeline skip the stage entirely.
    fn enabled(&self) -> bool;
}

pub struct NoCache;

impl ResponseCache for NoCache {
    fn lookup<'a>(
        &'a self,
        _request: &'a ChatCompletionRequest,
    ) -> BoxFuture<'a, Option<ChatCompletionResponse>> {
        Box::pin(std::future::ready(None))
    }

    fn store<'a>(
        &'a self,
        _request: &'a ChatCompletionRequest,
        _response: &'a ChatCompletionResponse,
    ) -> BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }

    fn enabled(&self) -> bool {
        false
    }
}
