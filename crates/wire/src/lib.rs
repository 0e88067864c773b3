//! The wire formats Switchyard speaks, as serde types: the OpenAI dialect (also Switchyard's
//! canonical request and response), the OpenAI Responses API, the Anthropic Messages dialect,
//! and server-sent-event framing. No I/O and no policy live here; the pipeline and the provider
//! adapters in `switchyard-core` decide what to do with these shapes.

pub mod anthropic;
pub mod bedrock;
pub mod gemini;
pub mod openai;
pub mod responses;
pub mod sse;
