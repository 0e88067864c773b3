//! `loadgen`: the load driver of the benchmark. It owns request generation
//! and measurement: it sends `POST {url}/v1/chat/completions` (or, with
//! `--dialect anthropic`, `POST {url}/v1/messages`; see [`dialect`]) with a ~1 KB
//! prompt over a pooled keep-alive hyper client, either open-loop at a fixed
//! rate (latency measured from each request's *scheduled* send time, so a
//! stalled server cannot hide queueing: free of coordinated omission) or
//! closed-loop on C connections (maximum throughput), optionally streaming
//! (time to first content chunk, total, and inter-chunk gaps) and optionally
//! holding K streams open at once. Results go to stdout as one JSON object
//! with microsecond HDR-histogram percentiles; with `--watch-pid` it also
//! reports that process's CPU time per request and peak RSS over the run.
//! A warm-up period precedes the measured window and is not recorded.

mod dialect;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use switchyard_bench::{new_histogram, proc_cpu_us, proc_status_kb, record, summary};

use dialect::{Dialect, Event};

#[derive(Parser, Debug)]
#[command(
    about = "Open- and closed-loop load driver for OpenAI chat and Anthropic Messages endpoints"
)]
struct Args {
    /// Base URL of the target (no path), e.g. http://127.0.0.1:4201
    #[arg(long, default_value = "http://127.0.0.1:4201")]
    url: String,
    /// API the requests speak: body, path, headers and how streams are read.
    #[arg(long, value_enum, default_value_t = Dialect::Openai)]
    dialect: Dialect,
    /// Request path appended to --url (default: the dialect's, /v1/chat/completions or
    /// /v1/messages).
    #[arg(long)]
    path: Option<String>,
    /// open = fixed arrival rate (--rate); closed = --connections workers back to back.
    #[arg(long, value_enum, default_value_t = Mode::Closed)]
    mode: Mode,
    /// Requests per second in open mode.
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// Measured seconds (after warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds before the measured window (same load, not recorded).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Concurrent workers (and so connections) in closed mode.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Request `"stream": true` and measure time to first content chunk and gaps.
    #[arg(long)]
    stream: bool,
    /// Streams: hang up (drop the connection) after N content chunks, as a client that goes
    /// away mid-stream; such a stream counts as a success once it has its N chunks.
    #[arg(long)]
    disconnect_after_chunks: Option<u64>,
    /// Hold K streams open at once (closed loop, K connections, implies --stream).
    #[arg(long)]
    concurrent_streams: Option<usize>,
    /// Model name put in the request body.
    #[arg(long, default_value = "bench-model")]
    model: String,
    /// Extra request header, `Name: value` (repeatable). With `--dialect anthropic` and no
    /// `x-api-key` or `authorization` header, `x-api-key: bench-key` is sent.
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Approximate size of the request body in bytes.
    #[arg(long, default_value_t = 1024)]
    prompt_bytes: usize,
    /// Per-request timeout in milliseconds (whole response, stream included).
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    /// Open mode: requests allowed in flight before new ones count as errors.
    #[arg(long, default_value_t = 20_000)]
    max_in_flight: usize,
    /// Tokio worker threads (0 = one per CPU).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Also report CPU time and RSS of this process (e.g. the server under test).
    #[arg(long)]
    watch_pid: Option<u32>,
    /// Kernel clock ticks per second, for reading /proc/PID/stat.
    #[arg(long, default_value_t = 100)]
    clk_tck: u64,
    /// RSS sampling period in milliseconds for --watch-pid.
    #[arg(long, default_value_t = 50)]
    sample_ms: u64,
    /// Percentage of requests (0-100) made unique by a number in their prompt, so that a cache
    /// cannot answer them; the others repeat one prompt. 100: all misses; 50: half hits.
    #[arg(long, default_value_t = 0)]
    unique_percent: u64,
    /// Free-form label copied into the JSON output.
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Open,
    Closed,
}

/// What every request task needs, shared read-only.
struct Shared {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    dialect: Dialect,
    stream: bool,
    disconnect_after_chunks: Option<u64>,
    timeout: Duration,
    measure_start: Instant,
    end: Instant,
    stats: Mutex<Stats>,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    sent: AtomicU64,
    /// See `--unique-percent`.
    unique_percent: u64,
    requests_made: AtomicU64,
}

/// Everything recorded in the measured window.
struct Stats {
    /// Completion minus scheduled time (open) or send time (closed).
    latency: Histogram<u64>,
    /// Completion minus actual send time.
    service: Histogram<u64>,
    /// Actual send time minus scheduled time (open mode only).
    send_lag: Histogram<u64>,
    /// First content chunk minus scheduled/send time (streams).
    ttft: Histogram<u64>,
    /// Time between consecutive content chunks of one stream.
    gaps: Histogram<u64>,
    /// Content chunks seen per successful stream.
    chunks: Histogram<u64>,
    ok: u64,
    window_completions: u64,
    errors: BTreeMap<String, u64>,
}

impl Stats {
    fn new() -> Self {
        Self {
            latency: new_histogram(),
            service: new_histogram(),
            send_lag: new_histogram(),
            ttft: new_histogram(),
            gaps: new_histogram(),
            chunks: new_histogram(),
            ok: 0,
            window_completions: 0,
            errors: BTreeMap::new(),
        }
    }

    fn error(&mut self, kind: String) {
        *self.errors.entry(kind).or_default() += 1;
    }
}

/// The outcome of one request.
struct Outcome {
    done: Instant,
    result: Result<StreamTimes, String>,
}

/// Timings of a successful response; content fields are empty when not streaming.
#[derive(Default)]
struct StreamTimes {
    first_content: Option<Instant>,
    gaps_us: Vec<u64>,
    content_chunks: u64,
}

fn main() {
    let args = Args::parse();
    if let Err(message) = validate(&args) {
        eprintln!("loadgen: {message}");
        std::process::exit(2);
    }
    let rt = switchyard_bench::runtime(args.threads);
    let output = rt.block_on(run(args));
    println!(
        "{}",
        serde_json::to_string_pretty(&output).unwrap_or_else(|_| output.to_string())
    );
    // Leave the runtime without waiting for lingering keep-alive connections.
    rt.shutdown_background();
    let ok = output["count"].as_u64().unwrap_or(0);
    if ok == 0 {
        eprintln!("loadgen: no request succeeded");
        std::process::exit(1);
    }
}

fn validate(args: &Args) -> Result<(), String> {
    if !(args.duration > 0.0 && args.duration <= 86_400.0) {
        return Err("--duration must be in (0, 86400] seconds".into());
    }
    if !(args.warmup >= 0.0 && args.warmup <= 3_600.0) {
        return Err("--warmup must be in [0, 3600] seconds".into());
    }
    if args.mode == Mode::Open && !(args.rate > 0.0 && args.rate <= 1_000_000.0) {
        return Err("--rate must be in (0, 1000000] requests per second".into());
    }
    let connections = args.concurrent_streams.unwrap_or(args.connections);
    if connections == 0 || connections > 100_000 {
        return Err("--connections / --concurrent-streams must be in [1, 100000]".into());
    }
    Ok(())
}

async fn run(args: Args) -> Value {
    let stream = args.stream || args.concurrent_streams.is_some();
    let (mode, connections) = match args.concurrent_streams {
        Some(k) => (Mode::Closed, k),
        None => (args.mode, args.connections),
    };
    let path = args.path.as_deref().unwrap_or(args.dialect.path());
    let uri: Uri = format!("{}{}", args.url.trim_end_matches('/'), path)
        .parse()
        .expect("--url and --path must form a valid URL");
    let headers = request_headers(&args.headers, args.dialect);

    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector);

    let start = Instant::now();
    let measure_start = start + Duration::from_secs_f64(args.warmup);
    let end = measure_start + Duration::from_secs_f64(args.duration);
    let shared = Arc::new(Shared {
        client,
        uri,
        headers,
        body: Bytes::from(args.dialect.body(&args.model, args.prompt_bytes, stream)),
        unique_percent: args.unique_percent.min(100),
        // Numbered from the clock, so that the unique prompts of two runs differ too.
        requests_made: AtomicU64::new(unique_origin()),
        dialect: args.dialect,
        stream,
        disconnect_after_chunks: args.disconnect_after_chunks,
        timeout: Duration::from_millis(args.timeout_ms),
        measure_start,
        end,
        stats: Mutex::new(Stats::new()),
        in_flight: AtomicUsize::new(0),
        peak_in_flight: AtomicUsize::new(0),
        sent: AtomicU64::new(0),
    });

    let watcher = args
        .watch_pid
        .map(|pid| tokio::spawn(watch(pid, args.clk_tck, args.sample_ms, measure_start, end)));

    match mode {
        Mode::Open => run_open(&shared, args.rate, start, args.max_in_flight).await,
        Mode::Closed => run_closed(&shared, connections).await,
    }

    let watched = match watcher {
        Some(handle) => handle.await.ok(),
        None => None,
    };
    report(&args, &shared, mode, connections, stream, watched)
}

/// The headers of every request: JSON content type, the `--header`s, and the dialect's
/// defaults for what they leave out.
fn request_headers(raw_headers: &[String], dialect: Dialect) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for raw in raw_headers {
        let (name, value) = raw
            .split_once(':')
            .expect("--header must look like 'Name: value'");
        let name =
            HeaderName::from_bytes(name.trim().as_bytes()).expect("--header name is invalid");
        let value = HeaderValue::from_str(value.trim()).expect("--header value is invalid");
        headers.append(name, value);
    }
    for (name, value) in dialect.default_headers() {
        if !headers.contains_key(*name) {
            headers.insert(*name, HeaderValue::from_static(value));
        }
    }
    if let Some(name) = dialect.default_key_header()
        && !headers.contains_key(name)
        && !headers.contains_key(hyper::header::AUTHORIZATION)
    {
        headers.insert(name, HeaderValue::from_static(dialect::DEFAULT_API_KEY));
    }
    headers
}

/// Open loop: a dedicated thread schedules request `i` at `start + i / rate`
/// and hands it to the runtime; each request's latency counts from that
/// scheduled instant.
async fn run_open(shared: &Arc<Shared>, rate: f64, start: Instant, max_in_flight: usize) {
    let handle = tokio::runtime::Handle::current();
    let scheduler_shared = shared.clone();
    let scheduler = tokio::task::spawn_blocking(move || {
        let shared = scheduler_shared;
        let mut i: u64 = 0;
        loop {
            let scheduled = start + Duration::from_secs_f64(i as f64 / rate);
            if scheduled >= shared.end {
                break;
            }
            i += 1;
            let now = Instant::now();
            if scheduled > now {
                std::thread::sleep(scheduled - now);
            }
            if shared.in_flight.load(Ordering::Relaxed) >= max_in_flight {
                if scheduled >= shared.measure_start {
                    lock(&shared.stats).error("dropped_max_in_flight".into());
                }
                continue;
            }
            let task_shared = shared.clone();
            handle.spawn(async move {
                let sent = Instant::now();
                let outcome = one_request(&task_shared).await;
                task_shared.account(scheduled, sent, outcome, true);
            });
        }
    });
    let _ = scheduler.await;
    drain(shared).await;
}

/// Closed loop: `connections` workers, each sending its next request as soon
/// as the previous one has finished, until the window ends.
async fn run_closed(shared: &Arc<Shared>, connections: usize) {
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let shared = shared.clone();
        workers.spawn(async move {
            while Instant::now() < shared.end {
                let sent = Instant::now();
                let outcome = one_request(&shared).await;
                let failed = outcome.result.is_err();
                shared.account(sent, sent, outcome, false);
                if failed {
                    // Do not spin on a dead target.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
}

/// Waits for open-loop requests still in flight, at most one timeout longer.
async fn drain(shared: &Shared) {
    let deadline = Instant::now() + shared.timeout + Duration::from_secs(1);
    while shared.in_flight.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn lock(stats: &Mutex<Stats>) -> std::sync::MutexGuard<'_, Stats> {
    stats
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// Records one outcome if the request belongs to the measured window.
    fn account(&self, scheduled: Instant, sent: Instant, outcome: Outcome, open: bool) {
        if scheduled < self.measure_start {
            return;
        }
        let us = |from: Instant, to: Instant| to.saturating_duration_since(from).as_micros() as u64;
        let mut stats = lock(&self.stats);
        match outcome.result {
            Ok(times) => {
                stats.ok += 1;
                if outcome.done <= self.end {
                    stats.window_completions += 1;
                }
                record(&mut stats.latency, us(scheduled, outcome.done));
                record(&mut stats.service, us(sent, outcome.done));
                if open {
                    record(&mut stats.send_lag, us(scheduled, sent));
                }
                if self.stream {
                    if let Some(first) = times.first_content {
                        record(&mut stats.ttft, us(scheduled, first));
                    }
                    for gap in times.gaps_us {
                        record(&mut stats.gaps, gap);
                    }
                    record(&mut stats.chunks, times.content_chunks);
                }
            }
            Err(kind) => stats.error(kind),
        }
    }
}

/// Sends one request and reads the whole response, timing content chunks
/// when streaming. Never panics; every failure becomes an error kind.
async fn one_request(shared: &Shared) -> Outcome {
    let now_in_flight = shared.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    shared
        .peak_in_flight
        .fetch_max(now_in_flight, Ordering::Relaxed);
    shared.sent.fetch_add(1, Ordering::Relaxed);
    let result = match tokio::time::timeout(shared.timeout, exchange(shared)).await {
        Ok(result) => result,
        Err(_) => Err("timeout".to_owned()),
    };
    shared.in_flight.fetch_sub(1, Ordering::Relaxed);
    Outcome {
        done: Instant::now(),
        result,
    }
}

async fn exchange(shared: &Shared) -> Result<StreamTimes, String> {
    let mut request = Request::new(Full::new(request_body(shared)));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = shared.uri.clone();
    *request.headers_mut() = shared.headers.clone();
    let response = shared
        .client
        .request(request)
        .await
        .map_err(|err| format!("transport: {}", error_chain(&err)))?;
    let status = response.status();
    let body = response.into_body();
    if !status.is_success() {
        // Drain so the connection can be reused, then report the status.
        let _ = body.collect().await;
        return Err(format!("status_{}", status.as_u16()));
    }
    if !shared.stream {
        body.collect()
            .await
            .map_err(|err| format!("body: {}", error_chain(&err)))?;
        return Ok(StreamTimes::default());
    }
    read_stream(shared.dialect, body, shared.disconnect_after_chunks).await
}

/// Reads an SSE answer to its end, timing the events that carry content.
async fn read_stream(
    dialect: Dialect,
    mut body: Incoming,
    disconnect_after: Option<u64>,
) -> Result<StreamTimes, String> {
    let mut times = StreamTimes::default();
    let mut last_content: Option<Instant> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut done = false;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| format!("body: {}", error_chain(&err)))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let now = Instant::now();
        buf.extend_from_slice(&data);
        while let Some((end, sep)) = find_event_end(&buf) {
            match dialect.classify(&buf[..end]) {
                Event::Content => {
                    times.content_chunks += 1;
                    match last_content {
                        None => times.first_content = Some(now),
                        Some(prev) => times
                            .gaps_us
                            .push(now.saturating_duration_since(prev).as_micros() as u64),
                    }
                    last_content = Some(now);
                    if disconnect_after.is_some_and(|n| times.content_chunks >= n) {
                        // Dropping the unfinished body closes the connection.
                        return Ok(times);
                    }
                }
                Event::Done => done = true,
                Event::Error => return Err("stream_error_event".to_owned()),
                Event::Other => {}
            }
            buf.drain(..end + sep);
        }
    }
    if !done {
        return Err(dialect.unfinished().to_owned());
    }
    if times.content_chunks == 0 {
        return Err("stream_without_content".to_owned());
    }
    Ok(times)
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Position and separator length of the first SSE event terminator
/// (`\n\n` or `\r\n\r\n`) in `buf`.
fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = memchr::memmem::find(buf, b"\n\n").map(|pos| (pos, 2));
    let crlf = memchr::memmem::find(buf, b"\r\n\r\n").map(|pos| (pos, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// What `--watch-pid` observed.
struct Watched {
    pid: u32,
    cpu_us: Option<u64>,
    rss_start_kb: Option<u64>,
    rss_peak_kb: Option<u64>,
    rss_end_kb: Option<u64>,
    hwm_kb: Option<u64>,
}

/// Reads the watched process's CPU time at the window's start and end, and
/// samples its RSS every `sample_ms` from now until the window ends.
async fn watch(
    pid: u32,
    clk_tck: u64,
    sample_ms: u64,
    measure_start: Instant,
    end: Instant,
) -> Watched {
    let rss_start_kb = proc_status_kb(pid, "VmRSS");
    let mut rss_peak_kb = rss_start_kb;
    let mut cpu_start = None;
    let mut ticker = tokio::time::interval(Duration::from_millis(sample_ms.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let now = Instant::now();
        if cpu_start.is_none() && now >= measure_start {
            cpu_start = proc_cpu_us(pid, clk_tck);
        }
        if let Some(kb) = proc_status_kb(pid, "VmRSS") {
            rss_peak_kb = Some(rss_peak_kb.map_or(kb, |peak| peak.max(kb)));
        }
        if now >= end {
            break;
        }
        let next_deadline = if cpu_start.is_none() {
            measure_start.min(end)
        } else {
            end
        };
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::time::sleep_until(next_deadline.into()) => {}
        }
    }
    let cpu_end = proc_cpu_us(pid, clk_tck);
    Watched {
        pid,
        cpu_us: cpu_start.zip(cpu_end).map(|(a, b)| b.saturating_sub(a)),
        rss_start_kb,
        rss_peak_kb,
        rss_end_kb: proc_status_kb(pid, "VmRSS"),
        hwm_kb: proc_status_kb(pid, "VmHWM"),
    }
}

fn report(
    args: &Args,
    shared: &Shared,
    mode: Mode,
    connections: usize,
    stream: bool,
    watched: Option<Watched>,
) -> Value {
    let stats = lock(&shared.stats);
    let error_count: u64 = stats.errors.values().sum();
    let rps = stats.window_completions as f64 / args.duration;
    let mut out = json!({
        "label": args.label,
        "url": shared.uri.to_string(),
        "model": args.model,
        "dialect": format!("{:?}", args.dialect).to_lowercase(),
        "mode": match mode { Mode::Open => "open", Mode::Closed => "closed" },
        "stream": stream,
        "rate": if mode == Mode::Open { json!(args.rate) } else { Value::Null },
        "connections": if mode == Mode::Closed { json!(connections) } else { Value::Null },
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "request_bytes": shared.body.len(),
        "count": stats.ok,
        "errors": error_count,
        "error_kinds": stats.errors,
        "rps": (rps * 10.0).round() / 10.0,
        "latency": summary(&stats.latency),
        "service": summary(&stats.service),
        "peak_in_flight": shared.peak_in_flight.load(Ordering::Relaxed),
        "sent_total": shared.sent.load(Ordering::Relaxed),
    });
    if let Some(n) = shared.disconnect_after_chunks {
        out["disconnect_after_chunks"] = json!(n);
    }
    if mode == Mode::Open {
        out["send_lag"] = summary(&stats.send_lag);
    }
    if stream {
        out["ttft"] = summary(&stats.ttft);
        out["interchunk"] = summary(&stats.gaps);
        out["chunks_per_stream"] = if stats.chunks.is_empty() {
            Value::Null
        } else {
            json!({
                "min": stats.chunks.min(),
                "mean": (stats.chunks.mean() * 10.0).round() / 10.0,
                "max": stats.chunks.max(),
            })
        };
    }
    if let Some(w) = watched {
        let per_request = w
            .cpu_us
            .filter(|_| stats.window_completions > 0)
            .map(|cpu| (cpu as f64 / stats.window_completions as f64 * 10.0).round() / 10.0);
        out["server"] = json!({
            "pid": w.pid,
            "cpu_us": w.cpu_us,
            "cpu_us_per_request": per_request,
            "cpu_cores": w.cpu_us.map(|cpu| (cpu as f64 / 1e6 / args.duration * 100.0).round() / 100.0),
            "rss_start_kb": w.rss_start_kb,
            "rss_peak_kb": w.rss_peak_kb,
            "rss_end_kb": w.rss_end_kb,
            "hwm_kb": w.hwm_kb,
        });
    }
    out
}

/// A starting number for the unique prompts that no earlier run used, and that keeps
/// `n % 100` cycling from 0.
fn unique_origin() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos / 100 * 100
}

/// The body of the next request: the shared one, or (for `--unique-percent` of them) a copy
/// whose prompt starts with the request's number.
fn request_body(shared: &Shared) -> Bytes {
    if shared.unique_percent == 0 {
        return shared.body.clone();
    }
    let n = shared.requests_made.fetch_add(1, Ordering::Relaxed);
    if n % 100 >= shared.unique_percent {
        return shared.body.clone();
    }
    // The user message is the last "Summarise…" string of the body.
    let body = &shared.body[..];
    let Some(at) = memchr::memmem::rfind(body, b"\"Summarise") else {
        return shared.body.clone();
    };
    let mut unique = Vec::with_capacity(body.len() + 24);
    unique.extend_from_slice(&body[..=at]);
    unique.extend_from_slice(format!("{n:020} ").as_bytes());
    unique.extend_from_slice(&body[at + 1..]);
    Bytes::from(unique)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lf_and_crlf_event_ends() {
        assert_eq!(find_event_end(b"data: x\n\ndata: y"), Some((7, 2)));
        assert_eq!(find_event_end(b"data: x\r\n\r\n"), Some((7, 4)));
        assert_eq!(find_event_end(b"data: x\n"), None);
    }

    #[test]
    fn anthropic_requests_get_their_default_headers() {
        let headers = request_headers(&[], Dialect::Anthropic);
        assert_eq!(headers["anthropic-version"], "2023-06-01");
        assert_eq!(headers["x-api-key"], dialect::DEFAULT_API_KEY);
        let bearer = request_headers(&["authorization: Bearer sk".into()], Dialect::Anthropic);
        assert!(!bearer.contains_key("x-api-key"));
        let own = request_headers(&["x-api-key: sk-sy-1".into()], Dialect::Anthropic);
        assert_eq!(own["x-api-key"], "sk-sy-1");
        let openai = request_headers(&[], Dialect::Openai);
        assert_eq!(openai.len(), 1);
    }
}
