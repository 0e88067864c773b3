//! Routing and resilience end to end: an in-process gateway in front of in-process upstreams
//! that speak the OpenAI wire format, one axum app per deployment on its own port. Each
//! upstream counts what it receives (in total and per `Authorization` key), answers with its
//! own name so a test can tell who served, and misbehaves on demand: 500, a 429 with
//! Retry-After for one key, 401, a context-length 400, a plain 400, a fixed latency, a request
//! held open until the test releases it, or no answer at all.
//!
//! Every assertion is about what a user of the gateway would notice (status, body, headers,
//! which upstream served) or what the upstreams themselves counted; none is about timing.

mod gateway;
mod upstream;

mod reload;
mod resilience;
mod strategies;
