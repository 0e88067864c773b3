//! What every request passes on its way to the router: the in-flight cap that sheds load with
//! an immediate 503 instead of queueing (Envoy's overload manager is the model), the deadline on
//! reading the request body, and the containment of a panic in one request's handling.
//!
//! [`Overload`] is the replica's load state: `/health/ready` reads [`Overload::shedding`] so
//! that load balancers send elsewhere, and `/metrics` its counters. The health and metrics
//! endpoints are never shed: a prober must see the gateway as it is, overloaded or not.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, Version, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::FutureExt;
use http_body::{Frame, SizeHint};
use switchyard_core::GatewayError;

use crate::ingress::AppState;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long `/health/ready` keeps answering 503 after the last shed request: long enough for a
/// load balancer's probe to notice a replica that sheds in bursts.
const NOT_READY_AFTER_SHEDDING: Duration = Duration::from_secs(1);

/// What a shed client is told to wait before retrying.
const RETRY_SHED_AFTER: Duration = Duration::from_secs(1);

/// The endpoints that never count against `server.max_in_flight`.
const NEVER_SHED: [&str; 3] = ["/health/live", "/health/ready", "/metrics"];

/// A debug-build request header that makes the handling of its request panic, so that the
/// e2e suite can check that a panic is contained. Compiled out of release builds.
#[cfg(debug_assertions)]
const TEST_PANIC: &str = "x-switchyard-test-panic";

/// One replica's load: requests in flight against `server.max_in_flight`, and what was refused.
#[derive(Debug)]
pub struct Overload {
    max_in_flight: usize,
    in_flight: AtomicUsize,
    shed: AtomicU64,
    refused_connections: AtomicU64,
    /// When the last request was shed, in milliseconds after `epoch` plus one; 0 is never.
    last_shed: AtomicU64,
    epoch: Instant,
}

impl Overload {
    pub fn new(max_in_flight: u32) -> Overload {
        Overload {
            max_in_flight: usize::try_from(max_in_flight).unwrap_or(usize::MAX),
            in_flight: AtomicUsize::new(0),
            shed: AtomicU64::new(0),
            refused_connections: AtomicU64::new(0),
            last_shed: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// A place among the requests in flight, held until the response's last byte; `None` (and
    /// the request counted as shed) when all are taken.
    pub fn admit(self: &Arc<Self>) -> Option<InFlight> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if before < self.max_in_flight {
            return Some(InFlight(self.clone()));
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.shed.fetch_add(1, Ordering::Relaxed);
        self.last_shed
            .store(self.millis_since_epoch() + 1, Ordering::Relaxed);
        None
    }

    /// True while every place is taken, and for a second after the last shed request.
    pub fn shedding(&self) -> bool {
        if self.in_flight.load(Ordering::Acquire) >= self.max_in_flight {
            return true;
        }
        match self.last_shed.load(Ordering::Relaxed) {
            0 => false,
            at => self.millis_since_epoch() + 1 - at < NOT_READY_AFTER_SHEDDING.as_millis() as u64,
        }
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed) as u64
    }

    pub fn shed_total(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    pub fn refused_connections(&self) -> u64 {
        self.refused_connections.load(Ordering::Relaxed)
    }

    /// Counts a connection closed at once because `server.max_connections` were open; returns
    /// the total so far.
    pub fn count_refused_connection(&self) -> u64 {
        self.refused_connections.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn millis_since_epoch(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }
}

/// A request's place in flight, given back when dropped.
#[derive(Debug)]
pub struct InFlight(Arc<Overload>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves one request through the router: shed past the in-flight cap, the body read under
/// `body_timeout`, a panic answered 500. `held` (and the place in flight) lives until the
/// response's body is done or dropped, so that a stream counts for as long as it flows.
pub async fn handle<B, T>(
    app: &AppState,
    router: Router,
    request: Request<B>,
    body_timeout: Duration,
    held: T,
) -> Response
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
    T: Send + Unpin + 'static,
{
    let path = request.uri().path();
    let anthropic = path.starts_with("/v1/messages");
    let place = if NEVER_SHED.contains(&path) {
        None
    } else {
        match app.overload.admit() {
            Some(place) => Some(place),
            None => return shed(request.headers(), anthropic, app.overload.max_in_flight),
        }
    };
    let client_id = request.headers().get("x-request-id").cloned();
    let version = request.version();
    let request = request.map(|body| TimedBody::new(body, body_timeout));
    let mut response = match AssertUnwindSafe(route(router, request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => panicked(client_id.as_ref(), anthropic, panic.as_ref()),
    };
    if response.status() == StatusCode::REQUEST_TIMEOUT && version <= Version::HTTP_11 {
        // The rest of the body may still be on its way: the connection cannot carry another
        // request after it.
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response.map(|body| Body::new(Holding::new(body, (place, held))))
}

async fn route<B>(router: Router, request: Request<B>) -> Response
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    #[cfg(debug_assertions)]
    if request
        .headers()
        .get(TEST_PANIC)
        .is_some_and(|v| v.as_bytes() == b"1")
    {
        panic!("{TEST_PANIC}: 1 asked this request's handling to panic (debug builds only)");
    }
    let mut router = router;
    match tower_service::Service::call(&mut router, request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// 503 at once, with `Retry-After`: queueing would only make every request slower.
fn shed(headers: &HeaderMap, anthropic: bool, max_in_flight: usize) -> Response {
    let mut e = GatewayError::new(
        503,
        "overloaded_error",
        "overloaded",
        format!(
            "the gateway is at capacity ({max_in_flight} requests in flight, server.max_in_flight); retry in a second, or on another replica"
        ),
    );
    e.retry_after = Some(RETRY_SHED_AFTER);
    error(&request_id(headers.get("x-request-id")), anthropic, &e)
}

/// A panic while handling one request: logged with its request id, answered 500; the
/// connection and the process serve on.
fn panicked(
    client_id: Option<&HeaderValue>,
    anthropic: bool,
    panic: &(dyn Any + Send),
) -> Response {
    let id = request_id(client_id);
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    tracing::error!(
        request_id = %id,
        panic = message,
        "a request's handling panicked: answered 500, the gateway serves on (this is a bug: please report it)"
    );
    let e = GatewayError::internal(format!(
        "the gateway failed while handling this request (request id {id}); it is logged, and the request may be retried"
    ));
    error(&id, anthropic, &e)
}

fn error(id: &str, anthropic: bool, e: &GatewayError) -> Response {
    if anthropic {
        crate::messages::error(id, e)
    } else {
        crate::egress::error(id, e)
    }
}

/// The client's `x-request-id` when it is sane (the rule of `RequestContext`), else a new one.
fn request_id(client: Option<&HeaderValue>) -> String {
    client
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(switchyard_core::request::new_request_id, str::to_owned)
}

/// The error a request body gives when it does not arrive within `server.body_read_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {}s (server.body_read_timeout)", .0.as_secs_f64())]
pub struct BodyReadTimeout(pub Duration);

/// A request body that fails with [`BodyReadTimeout`] once its deadline passes. The timer is
/// only made when the body has to wait: a body already in the buffer costs nothing.
struct TimedBody<B> {
    inner: B,
    timeout: Duration,
    deadline: tokio::time::Instant,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> TimedBody<B> {
    fn new(inner: B, timeout: Duration) -> Self {
        TimedBody {
            inner,
            timeout,
            deadline: tokio::time::Instant::now() + timeout,
            timer: None,
        }
    }
}

impl<B> http_body::Body for TimedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyReadTimeout(this.timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps `T` alive until the body is done or dropped.
struct Holding<T> {
    inner: Body,
    _held: T,
}

impl<T> Holding<T> {
    fn new(inner: Body, held: T) -> Self {
        Holding { inner, _held: held }
    }
}

impl<T: Unpin> http_body::Body for Holding<T> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_cap_requests_are_shed_and_readiness_follows() {
        let load = Arc::new(Overload::new(2));
        let first = load.admit().expect("room for the first");
        let _second = load.admit().expect("room for the second");
        assert!(load.shedding(), "every place taken");
        assert!(load.admit().is_none());
        assert_eq!(load.shed_total(), 1);
        drop(first);
        assert_eq!(load.in_flight(), 1);
        assert!(
            load.shedding(),
            "not ready for a second after a shed request"
        );
        assert!(load.admit().is_some(), "a freed place is taken again");
    }
}
