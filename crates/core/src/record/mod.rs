//! Record: one [`RequestRecord`] per request (who, what, where it went, every attempt, tokens,
//! cost, latency, outcome), written off the hot path.
//!
//! The pipeline hands records to a [`Recorder`], which only pushes them into a bounded channel;
//! a background task drains the channel in batches into every [`RecordSink`]: the SQLite or
//! PostgreSQL log of `switchyard-store` (durable: a failed write is retried with the same batch
//! while new records wait in the buffer), and the sinks derived from records — metrics, traces,
//! JSON lines, the log — which are best-effort. Everything observability derives from a request
//! is computed here, off the hot path, from the one record. A full buffer never blocks a
//! response: the record is dropped, counted ([`RecorderStats`]) and logged, never silently. On
//! shutdown the recorder drains what is buffered.

pub mod config;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Serialize;
use tokio::sync::mpsc;

/// One upstream call of a request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRecord {
    pub provider: String,
    pub model: String,
    /// Upstream HTTP status, if the upstream answered.
    pub status: Option<u16>,
    /// The error class when the attempt failed.
    pub error_class: Option<&'static str>,
    /// When the attempt started, in microseconds since the Unix epoch (a span's start time).
    pub started_at_us: i64,
    pub latency_ms: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestRecord {
    pub request_id: String,
    pub started_at_ms: i64,
    pub endpoint: &'static str,
    /// The API the client spoke (`openai`, `anthropic`).
    pub dialect: &'static str,
    pub key_id: Option<String>,
    pub user: Option<String>,
    pub team: Option<String>,
    /// The feature the call was made for (`x-switchyard-feature`, or a key's `feature:` tag).
    pub feature: Option<String>,
    /// The key's tags.
    pub tags: Vec<String>,
    /// The model name the client sent.
    pub requested_model: String,
    pub route: Option<String>,
    /// The deployment that served the request.
    pub provider: Option<String>,
    pub model: Option<String>,
    pub upstream_model: Option<String>,
    pub stream: bool,
    /// The HTTP status the client got.
    pub status: u16,
    pub error_code: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    /// The provider gave no usage; the tokens were estimated.
    pub usage_estimated: bool,
    pub cost_usd: f64,
    pub latency_ms: f64,
    /// Time to the first streamed content, for streams.
    pub ttft_ms: Option<f64>,
    pub attempts: Vec<AttemptRecord>,
    pub cache_hit: bool,
    /// What the call would have cost upstream, when the cache answered it.
    pub cache_saved_usd: f64,
    /// `guardrail:action[:what]` for each guardrail that did more than allow.
    pub guardrail_actions: Vec<String>,
    /// What admission decided when it did not simply admit: `downgraded`, `rate_limited`,
    /// `budget_exceeded`, `too_large` or `limits_unavailable`.
    pub admission: Option<&'static str>,
    /// The client went away before the response was complete.
    pub client_disconnected: bool,
    /// The model the client asked for, when a limit sent the request to a cheaper one.
    pub downgraded_from: Option<String>,
    /// The trace this request belongs to (the caller's `traceparent`, or a new one).
    pub trace: TraceContext,
    /// The request and response bodies, when the route records them (after redaction, capped).
    pub request_body: Option<String>,
    pub response_body: Option<String>,
}

pub use crate::request::TraceContext;

/// A batch of records, shared by every sink.
pub type Batch = Arc<Vec<RequestRecord>>;

/// Where batches of records are written.
pub trait RecordSink: Send + Sync + 'static {
    fn write<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), String>>;

    /// Whether a failed write is worth retrying with the same batch (a database that may come
    /// back), rather than reported and skipped (a log line, an exporter that drops what it
    /// cannot send).
    fn durable(&self) -> bool {
        false
    }

    /// A short name for logs.
    fn name(&self) -> &'static str;
}

/// Writes every record as a structured log line (target `switchyard::request`).
pub struct LogSink;

impl RecordSink for LogSink {
    fn write<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), String>> {
        for r in batch.iter() {
            let attempts = serde_json::to_string(&r.attempts).unwrap_or_default();
            tracing::info!(
                target: "switchyard::request",
                request_id = %r.request_id,
                trace_id = %r.trace.trace_id_hex(),
                endpoint = r.endpoint,
                model = %r.requested_model,
                provider = r.provider.as_deref().unwrap_or("-"),
                status = r.status,
                error = r.error_code.as_deref().unwrap_or("-"),
                prompt_tokens = r.prompt_tokens,
                completion_tokens = r.completion_tokens,
                cost_usd = r.cost_usd,
                latency_ms = r.latency_ms,
                stream = r.stream,
                attempts = %attempts,
                "request"
            );
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn name(&self) -> &'static str {
        "log"
    }
}

/// Writes every record as one line of JSON on stdout, for log shippers (Vector, Fluent Bit,
/// the Datadog agent…). Bodies stay out of it unless the route records them.
pub struct JsonLinesSink;

impl RecordSink for JsonLinesSink {
    fn write<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), String>> {
        use std::io::Write;
        let mut out = Vec::with_capacity(batch.len() * 512);
        for r in batch.iter() {
            if serde_json::to_writer(&mut out, r).is_ok() {
                out.push(b'\n');
            }
        }
        let written = std::io::stdout()
            .lock()
            .write_all(&out)
            .map_err(|e| format!("cannot write records to stdout: {e}"));
        Box::pin(std::future::ready(written))
    }

    fn name(&self) -> &'static str {
        "stdout"
    }
}

const BATCH: usize = 512;
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Pauses between attempts to write a batch to a durable sink that failed.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// Attempts at a failing durable sink once shutdown has begun, before its batch is given up.
const RETRIES_WHEN_CLOSING: u32 = 3;
/// Batches a best-effort sink may fall behind by before it misses one (counted and logged).
const SIDE_BACKLOG: usize = 16;

enum Message {
    Record(Box<RequestRecord>),
    /// Write everything sent before, then answer.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Counters of the recorder, for `/metrics` and the logs.
#[derive(Debug, Default)]
pub struct RecorderStats {
    /// Records refused because the buffer was full or the writer had stopped.
    pub dropped: AtomicU64,
    /// Records a durable sink never took (it kept failing through shutdown).
    pub lost: AtomicU64,
    /// Records handed to the sinks.
    pub written: AtomicU64,
    /// Failed writes to any sink (each retry counts).
    pub write_errors: AtomicU64,
    /// Batches a best-effort sink missed because it had fallen too far behind.
    pub side_batches_skipped: AtomicU64,
}

/// The hot-path handle: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Message>,
    stats: Arc<RecorderStats>,
}

/// The background writer; await [`RecorderTask::finish`] on shutdown to drain the buffer.
pub struct RecorderTask {
    handle: tokio::task::JoinHandle<()>,
    close: tokio::sync::oneshot::Sender<()>,
    /// Seen by a write being retried, which then stops retrying.
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl Recorder {
    /// Starts the writer: batches go to every sink in turn.
    pub fn spawn(sinks: Vec<Arc<dyn RecordSink>>, buffer: usize) -> (Recorder, RecorderTask) {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        let (close, closed) = tokio::sync::oneshot::channel();
        let stats = Arc::new(RecorderStats::default());
        let (durable, side): (Vec<_>, Vec<_>) = sinks.into_iter().partition(|s| s.durable());
        let side = side.into_iter().map(|s| Side::spawn(s, &stats)).collect();
        let writer = Writer {
            durable,
            side,
            stats: stats.clone(),
            given_up: Default::default(),
            stopping: Default::default(),
        };
        let stopping = writer.stopping.clone();
        let handle = tokio::spawn(writer.run(rx, closed));
        (
            Recorder { tx, stats },
            RecorderTask {
                handle,
                close,
                stopping,
            },
        )
    }

    pub fn record(&self, record: RequestRecord) {
        if let Err(e) = self.tx.try_send(Message::Record(Box::new(record))) {
            let n = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // One warning per power of two keeps a flood of drops from flooding the log.
            if n.is_power_of_two() {
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => {
                        "the record buffer is full (records.buffer)"
                    }
                    mpsc::error::TrySendError::Closed(_) => "the record writer has stopped",
                };
                tracing::warn!(dropped_total = n, "request record dropped: {why}");
            }
        }
    }

    /// Waits until every record recorded before this call is in the durable sinks (the
    /// database), and queued for the others.
    pub async fn flush(&self) {
        let (done, written) = tokio::sync::oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    /// Records dropped since start.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    /// Records waiting to be written.
    pub fn buffered(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    pub fn stats(&self) -> &RecorderStats {
        &self.stats
    }
}

impl RecorderTask {
    /// Stops accepting records (later ones are counted as dropped) and waits until every
    /// record already buffered is written.
    pub async fn finish(self) {
        self.stopping.store(true, Ordering::Relaxed);
        let _ = self.close.send(());
        let _ = self.handle.await;
    }
}

/// Writes batches: to the durable sinks in turn (the database: retried until it takes them),
/// and to each best-effort sink through a queue of its own, so that a slow exporter (a
/// collector that hangs until its timeout) never holds up the request log.
struct Writer {
    durable: Vec<Arc<dyn RecordSink>>,
    side: Vec<Side>,
    stats: Arc<RecorderStats>,
    /// Set once shutdown gave up a batch: the database is gone, and each later batch gets one
    /// attempt, so that a dead database cannot hold the exit up batch after batch.
    given_up: std::sync::atomic::AtomicBool,
    /// Set when shutdown begins, also while a batch is being retried.
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

/// A best-effort sink on a task of its own.
struct Side {
    name: &'static str,
    queue: mpsc::Sender<Batch>,
    task: tokio::task::JoinHandle<()>,
}

impl Side {
    fn spawn(sink: Arc<dyn RecordSink>, stats: &Arc<RecorderStats>) -> Side {
        let (queue, mut batches) = mpsc::channel::<Batch>(SIDE_BACKLOG);
        let stats = stats.clone();
        let name = sink.name();
        let task = tokio::spawn(async move {
            while let Some(batch) = batches.recv().await {
                if let Err(e) = sink.write(&batch).await {
                    stats.write_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        sink = name,
                        records = batch.len(),
                        "cannot hand request records to a sink: {e}"
                    );
                }
            }
        });
        Side { name, queue, task }
    }

    fn send(&self, batch: &Batch, stats: &RecorderStats) {
        if self.queue.try_send(batch.clone()).is_err() {
            let n = stats.side_batches_skipped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    sink = self.name,
                    skipped_total = n,
                    records = batch.len(),
                    "a sink is too far behind: it misses this batch of records"
                );
            }
        }
    }
}

impl Writer {
    async fn run(
        self,
        mut rx: mpsc::Receiver<Message>,
        mut closed: tokio::sync::oneshot::Receiver<()>,
    ) {
        let mut inbox = Vec::with_capacity(BATCH);
        let mut closing = false;
        loop {
            let n = if closing {
                rx.recv_many(&mut inbox, BATCH).await
            } else {
                tokio::select! {
                    n = rx.recv_many(&mut inbox, BATCH) => n,
                    _ = &mut closed => {
                        // Shutdown: refuse new records, then drain what is buffered.
                        closing = true;
                        rx.close();
                        continue;
                    }
                }
            };
            if n == 0 {
                // Every sender dropped and the buffer is empty: let the side sinks finish.
                for side in self.side {
                    drop(side.queue);
                    let _ = side.task.await;
                }
                return;
            }
            // Give a burst a moment to fill the batch (fewer, larger writes), unless someone
            // waits for a flush.
            let flushing =
                |inbox: &Vec<Message>| inbox.iter().any(|m| matches!(m, Message::Flush(_)));
            if inbox.len() < BATCH && !flushing(&inbox) && !closing {
                let deadline = tokio::time::sleep(FLUSH_EVERY);
                tokio::pin!(deadline);
                while inbox.len() < BATCH && !flushing(&inbox) {
                    let room = BATCH - inbox.len();
                    tokio::select! {
                        _ = &mut deadline => break,
                        n = rx.recv_many(&mut inbox, room) => if n == 0 { break },
                    }
                }
            }
            let mut batch = Vec::with_capacity(inbox.len());
            let mut waiting = Vec::new();
            for m in inbox.drain(..) {
                match m {
                    Message::Record(r) => batch.push(*r),
                    Message::Flush(done) => waiting.push(done),
                }
            }
            self.write(Arc::new(batch), closing).await;
            for done in waiting {
                let _ = done.send(());
            }
        }
    }

    /// Hands `batch` to every sink. A durable sink that fails is retried with backoff while
    /// new records wait in the (bounded) buffer; best-effort sinks get it on their queues.
    async fn write(&self, batch: Batch, closing: bool) {
        if batch.is_empty() {
            return;
        }
        for side in &self.side {
            side.send(&batch, &self.stats);
        }
        for sink in &self.durable {
            let mut pause = RETRY_FIRST;
            let mut tries = 0u32;
            while let Err(e) = sink.write(&batch).await {
                tries += 1;
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                let closing = closing || self.stopping.load(Ordering::Relaxed);
                let given_up = self.given_up.load(Ordering::Relaxed);
                if closing && (given_up || tries >= RETRIES_WHEN_CLOSING) {
                    self.given_up.store(true, Ordering::Relaxed);
                    self.stats
                        .lost
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    tracing::error!(
                        sink = sink.name(),
                        records = batch.len(),
                        "cannot write request records, giving up on this batch: {e}"
                    );
                    break;
                }
                if tries == 1 || tries.is_power_of_two() {
                    tracing::error!(
                        sink = sink.name(),
                        records = batch.len(),
                        tries,
                        "cannot write request records, retrying in {pause:?} (new records wait in the buffer): {e}"
                    );
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_MAX);
            }
        }
        self.stats
            .written
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Memory(Mutex<Vec<String>>);

    impl RecordSink for Memory {
        fn write<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), String>> {
            self.0
                .lock()
                .unwrap()
                .extend(batch.iter().map(|r| r.request_id.clone()));
            Box::pin(std::future::ready(Ok(())))
        }

        fn name(&self) -> &'static str {
            "memory"
        }
    }

    /// Fails its first `failures` writes, then stores.
    struct Flaky {
        failures: AtomicU64,
        inner: Memory,
    }

    impl RecordSink for Flaky {
        fn write<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), String>> {
            let left = self.failures.load(Ordering::Relaxed);
            if left > 0 {
                self.failures.store(left - 1, Ordering::Relaxed);
                return Box::pin(std::future::ready(Err("database is down".into())));
            }
            self.inner.write(batch)
        }

        fn durable(&self) -> bool {
            true
        }

        fn name(&self) -> &'static str {
            "flaky"
        }
    }

    fn numbered(i: usize) -> RequestRecord {
        RequestRecord {
            request_id: i.to_string(),
            ..Default::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_durable_sink_gets_the_same_batch_again_until_it_takes_it() {
        let sink = Arc::new(Flaky {
            failures: AtomicU64::new(4),
            inner: Memory::default(),
        });
        let (recorder, task) = Recorder::spawn(vec![sink.clone()], 100);
        for i in 0..10 {
            recorder.record(numbered(i));
        }
        recorder.flush().await;
        assert_eq!(sink.inner.0.lock().unwrap().len(), 10);
        assert_eq!(recorder.stats().write_errors.load(Ordering::Relaxed), 4);
        assert_eq!(recorder.stats().lost.load(Ordering::Relaxed), 0);
        task.finish().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_database_does_not_hold_shutdown_up_batch_after_batch() {
        let sink = Arc::new(Flaky {
            failures: AtomicU64::new(u64::MAX),
            inner: Memory::default(),
        });
        let (recorder, task) = Recorder::spawn(vec![sink.clone()], 2_000);
        for i in 0..1_200 {
            recorder.record(numbered(i));
        }
        task.finish().await;
        // Three batches (512, 512, 176): the first is tried three times, the others once.
        assert_eq!(recorder.stats().write_errors.load(Ordering::Relaxed), 5);
        assert_eq!(recorder.stats().lost.load(Ordering::Relaxed), 1_200);
    }

    #[tokio::test]
    async fn flush_waits_for_what_was_recorded_before() {
        let sink = Arc::new(Memory::default());
        let (recorder, task) = Recorder::spawn(vec![sink.clone()], 100);
        recorder.record(numbered(1));
        recorder.record(numbered(2));
        recorder.flush().await;
        assert_eq!(
            *sink.0.lock().unwrap(),
            vec!["1".to_owned(), "2".to_owned()]
        );
        assert_eq!(recorder.buffered(), 0);
        task.finish().await;
    }

    #[tokio::test]
    async fn records_are_written_and_drained_on_shutdown() {
        let sink = Arc::new(Memory::default());
        let (recorder, task) = Recorder::spawn(vec![sink.clone()], 100);
        for i in 0..10 {
            recorder.record(numbered(i));
        }
        // The handle outlives shutdown (as handlers holding it may): finish must not wait for it.
        task.finish().await;
        assert_eq!(sink.0.lock().unwrap().len(), 10);
        recorder.record(RequestRecord::default());
        assert_eq!(
            recorder.dropped(),
            1,
            "a record after shutdown is counted as dropped"
        );
    }

    #[tokio::test]
    async fn a_full_buffer_drops_and_counts_instead_of_blocking() {
        let sink = Arc::new(Memory::default());
        let (recorder, task) = Recorder::spawn(vec![sink.clone()], 2);
        // The writer cannot run between these sends on a current-thread runtime.
        for i in 0..5 {
            recorder.record(RequestRecord {
                request_id: i.to_string(),
                ..Default::default()
            });
        }
        assert_eq!(recorder.dropped(), 3);
        drop(recorder);
        task.finish().await;
        assert_eq!(sink.0.lock().unwrap().len(), 2);
    }
}
