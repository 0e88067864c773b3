//! The listening socket and the client connections on it: the accept loop, the cap on open
//! connections, the protocol limits (request head size and read time, idle time, HTTP/2
//! streams and rapid-reset protection), and the graceful drain on shutdown.
//!
//! Without these, a client that opens connections and trickles half a request line, or
//! declares a body and never sends it, holds a connection (and a file descriptor) forever.
//! Each request on a connection goes through [`crate::overload::handle`].

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use switchyard_core::config::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use crate::ingress::AppState;

/// HTTP/2 streams a client may open and reset before the gateway answers them, per connection
/// (CVE-2023-44487, "rapid reset"): past it the connection is closed.
const MAX_PENDING_ACCEPT_RESETS: usize = 20;
/// HTTP/2 streams the gateway may reset for a client's protocol errors before it closes the
/// connection.
const MAX_LOCAL_ERROR_RESETS: usize = 256;
/// File descriptors kept for what is not a client connection: upstreams, the database, logs.
const RESERVED_FDS: u64 = 1024;
/// After an idle connection is asked to close, how long before it is closed regardless.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What every connection shares.
struct Shared {
    app: Arc<AppState>,
    router: Router,
    protocol: auto::Builder<TokioExecutor>,
    server: ServerConfig,
}

/// Accepts connections until `shutdown` resolves, then lets open connections finish their
/// requests until `server.drain_timeout`.
pub async fn run(
    listener: TcpListener,
    app: Arc<AppState>,
    router: Router,
    server: ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let max_connections = server.max_connections;
    let drain = server.drain_timeout;
    let shared = Arc::new(Shared {
        app,
        router,
        protocol: protocol(&server),
        server,
    });
    let slots = Arc::new(Semaphore::new(max_connections as usize));
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((tcp, _)) => match slots.clone().try_acquire_owned() {
                Ok(slot) => spawn_connection(tcp, slot, &shared, stopping.clone()),
                Err(_) => refuse(tcp, &shared),
            },
            Err(e) => pause_after_accept_error(e).await,
        }
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection gives its slot back when it ends: all slots back is all closed.
    let all_closed = slots.acquire_many(max_connections);
    if tokio::time::timeout(drain, all_closed).await.is_err() {
        tracing::warn!(
            drain_timeout = ?drain,
            "requests were still in flight at the drain deadline (server.drain_timeout): the gateway stops without them"
        );
    }
}

/// HTTP/1.1 and HTTP/2 (prior knowledge), each with its limits.
fn protocol(server: &ServerConfig) -> auto::Builder<TokioExecutor> {
    let max_header = usize::try_from(server.max_header_size).unwrap_or(usize::MAX);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(server.header_read_timeout)
        .max_buf_size(max_header)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(server.http2_max_concurrent_streams)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESETS)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESETS)
        .max_header_list_size(u32::try_from(max_header).unwrap_or(u32::MAX));
    builder
}

/// Past `server.max_connections`, a new connection is closed at once: the client sees a
/// closed connection it can retry, and the kernel's accept queue never fills.
fn refuse(tcp: TcpStream, shared: &Shared) {
    drop(tcp);
    let refused = shared.app.overload.count_refused_connection();
    if refused == 1 || refused.is_multiple_of(1000) {
        tracing::warn!(
            max_connections = shared.server.max_connections,
            refused_so_far = refused,
            "a new connection was closed at once: server.max_connections connections are open"
        );
    }
}

/// Too many open files and the like pass as connections close; a pause keeps the accept loop
/// from spinning on the error meanwhile.
async fn pause_after_accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!("cannot accept a connection: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn spawn_connection(
    tcp: TcpStream,
    slot: OwnedSemaphorePermit,
    shared: &Arc<Shared>,
    mut stopping: watch::Receiver<bool>,
) {
    // Without TCP_NODELAY, Nagle's algorithm holds small SSE frames back until the client's
    // delayed ACK (40 ms on Linux): streams would arrive in bursts.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::warn!("cannot set TCP_NODELAY on a client connection: {e}");
    }
    // The client's address, for what limits per client (the console's failed sign-ins).
    let peer = tcp.peer_addr().ok();
    let shared = shared.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let activity = Arc::new(Activity::new());
        let service = {
            let (shared, activity) = (shared.clone(), activity.clone());
            service_fn(move |mut request: hyper::Request<Incoming>| {
                let (shared, activity) = (shared.clone(), activity.clone());
                if let Some(peer) = peer {
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                }
                async move {
                    let on_connection = activity.begin();
                    let timeout = shared.server.body_read_timeout;
                    let router = shared.router.clone();
                    let response = crate::overload::handle(
                        &shared.app,
                        router,
                        request,
                        timeout,
                        on_connection,
                    )
                    .await;
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let connection = shared.protocol.serve_connection(TokioIo::new(tcp), service);
        tokio::pin!(connection);
        let mut closing_since: Option<Instant> = None;
        loop {
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!("a client connection ended with an error: {e}");
                    }
                    return;
                }
                _ = stopping.wait_for(|stop| *stop), if closing_since.is_none() => {
                    connection.as_mut().graceful_shutdown();
                    closing_since = Some(Instant::now() + shared.server.drain_timeout);
                }
                expiry = activity.expired(&shared.server), if closing_since.is_none() => match expiry {
                    Expiry::NoRequest => return,
                    Expiry::Idle => {
                        connection.as_mut().graceful_shutdown();
                        closing_since = Some(Instant::now() + IDLE_CLOSE_GRACE);
                    }
                },
                () = sleep_until_some(closing_since) => return,
            }
        }
    });
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Why a connection is closed for what it did not do.
enum Expiry {
    /// No request started within `server.header_read_timeout` of opening. hyper's own header
    /// timer does not cover the protocol sniffing before it, nor HTTP/2.
    NoRequest,
    /// No request in flight for `server.idle_timeout`.
    Idle,
}

/// One connection's requests: how many started, how many are in flight, since when it idles.
struct Activity {
    opened: Instant,
    started: AtomicU64,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` when the last request ended.
    idle_since: AtomicU64,
    changed: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    /// A request started; it ends when the returned guard drops (after its response's body).
    fn begin(self: &Arc<Self>) -> RequestOnConnection {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
        RequestOnConnection(self.clone())
    }

    /// Resolves when the connection should be closed for idling.
    async fn expired(&self, server: &ServerConfig) -> Expiry {
        loop {
            let changed = self.changed.notified();
            let deadline = if self.started.load(Ordering::Relaxed) == 0 {
                self.opened + server.header_read_timeout.min(server.idle_timeout)
            } else if self.in_flight.load(Ordering::Acquire) > 0 {
                changed.await;
                continue;
            } else {
                let idle_since = Duration::from_millis(self.idle_since.load(Ordering::Relaxed));
                self.opened + idle_since + server.idle_timeout
            };
            if Instant::now() >= deadline {
                return match self.started.load(Ordering::Relaxed) {
                    0 => Expiry::NoRequest,
                    _ => Expiry::Idle,
                };
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = changed => {}
            }
        }
    }
}

/// A request in flight on its connection.
struct RequestOnConnection(Arc<Activity>);

impl Drop for RequestOnConnection {
    fn drop(&mut self) {
        let activity = &self.0;
        let now = u64::try_from(activity.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        activity.idle_since.store(now, Ordering::Relaxed);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
        activity.changed.notify_one();
    }
}

/// Whether the limits read at start differ between two configs (a reload does not change them).
pub fn limits_changed(a: &ServerConfig, b: &ServerConfig) -> bool {
    let limits = |s: &ServerConfig| {
        (
            (s.header_read_timeout, s.body_read_timeout, s.idle_timeout),
            (s.max_header_size, s.max_connections, s.max_in_flight),
            s.http2_max_concurrent_streams,
        )
    };
    limits(a) != limits(b)
}

/// Raises the soft limit on open files to the hard limit (each connection is one), logs it,
/// and warns when `server.max_connections` cannot fit under it.
#[cfg(unix)]
pub fn raise_open_files_limit(max_connections: u32) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives on this stack.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!(
            "cannot read the open files limit: {}",
            std::io::Error::last_os_error()
        );
        return;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        } else {
            tracing::warn!(
                "cannot raise the open files limit to its hard limit: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    // rlim_t is u64 on 64-bit targets but narrower on some 32-bit ones.
    #[allow(clippy::unnecessary_cast)]
    let open_files = limit.rlim_cur as u64;
    tracing::info!(open_files, "open files limit");
    if open_files < u64::from(max_connections) + RESERVED_FDS {
        tracing::warn!(
            open_files,
            max_connections,
            "the open files limit is too low for server.max_connections: raise it (ulimit -n) or lower server.max_connections"
        );
    }
}

#[cfg(not(unix))]
pub fn raise_open_files_limit(_max_connections: u32) {}
