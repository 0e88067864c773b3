//! Shared plumbing for the benchmark binaries: building a tokio runtime with a
//! chosen thread count, the hyper accept loop used by `mock-upstream` and
//! `bare-proxy`, reading CPU time and RSS of a process from `/proc`, and
//! percentile summaries of HDR histograms in the JSON shape every binary
//! prints. Nothing here is Switchyard-specific; the crate only ever talks to
//! 127.0.0.1.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use hdrhistogram::Histogram;
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Builds a multi-thread tokio runtime with `threads` workers (0 = one per CPU).
///
/// Panics only at start-up, when the OS refuses to create threads.
pub fn runtime(threads: usize) -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        builder.worker_threads(threads);
    }
    builder
        .enable_all()
        .build()
        .expect("cannot build the tokio runtime")
}

/// Accepts connections on `addr` forever and serves each with `handler` over
/// HTTP/1.1 keep-alive (or h2c prior knowledge), with `TCP_NODELAY` set.
///
/// Returns an error only when the listener cannot be bound or accept fails
/// persistently; per-connection errors are ignored (a benchmark client closing
/// its socket mid-response is normal at the end of a run).
pub async fn serve<F, Fut, B>(addr: SocketAddr, handler: F) -> std::io::Result<()>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = TcpListener::bind(addr).await?;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true);
    let builder = std::sync::Arc::new(builder);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                // EMFILE and friends: back off briefly instead of spinning.
                eprintln!("accept failed: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = service_fn(handler);
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Headers that describe one hop's connection and must not be forwarded.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
];

/// Removes hop-by-hop headers from `headers` in place.
pub fn strip_hop_by_hop(headers: &mut hyper::HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// Total CPU time (user + system) a process has used, in microseconds, read
/// from `/proc/PID/stat`. `clk_tck` is the kernel's `CLK_TCK` (usually 100).
pub fn proc_cpu_us(pid: u32, clk_tck: u64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after the closing
    // parenthesis are space-separated. utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_ascii_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 1_000_000 / clk_tck.max(1))
}

/// One `kB` field (`VmRSS`, `VmHWM`, ...) of `/proc/PID/status`, in KiB.
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// A histogram of microsecond values from 1 µs to one hour, 3 significant
/// digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds are valid")
}

/// Records `us` microseconds, clamping to the histogram's range.
pub fn record(hist: &mut Histogram<u64>, us: u64) {
    hist.saturating_record(us.max(1));
}

/// The JSON summary of a microsecond histogram: count, mean, min, p50, p90,
/// p99, p99.9, max.
pub fn summary(hist: &Histogram<u64>) -> Value {
    if hist.is_empty() {
        return json!({ "count": 0 });
    }
    json!({
        "count": hist.len(),
        "mean_us": (hist.mean() * 10.0).round() / 10.0,
        "min_us": hist.min(),
        "p50_us": hist.value_at_quantile(0.50),
        "p90_us": hist.value_at_quantile(0.90),
        "p99_us": hist.value_at_quantile(0.99),
        "p999_us": hist.value_at_quantile(0.999),
        "max_us": hist.max(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process_stats() {
        let pid = std::process::id();
        assert!(proc_cpu_us(pid, 100).is_some());
        assert!(proc_status_kb(pid, "VmRSS").is_some_and(|kb| kb > 0));
        assert!(proc_status_kb(pid, "NoSuchField").is_none());
    }

    #[test]
    fn summary_of_empty_and_filled() {
        let mut hist = new_histogram();
        assert_eq!(summary(&hist)["count"], 0);
        for us in 1..=1000 {
            record(&mut hist, us);
        }
        let s = summary(&hist);
        assert_eq!(s["count"], 1000);
        assert_eq!(s["p50_us"], 500);
    }
}
