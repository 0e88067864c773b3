//! Record: one [`RequestRecord`] per request (who, what, where it went, every attempt, tokens,
//! cost, latency, outcome), written off the hot path.
//!
//! The pipeline hands records to a [`Recorder`], which only pushes them into a bounded channel;
//! a background task drains the channel in batches into a [`RecordSink`] (the SQLite or
//! PostgreSQL table of `switchyard-store`, or the log). A full buffer never blocks a response:
//! the record is dropped, counted, and a warning is logged, never silently. On shutdown the
//! recorder drains what is buffered.

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
    pub latency_ms: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestRecord {
    pub request_id: String,
    pub started_at_ms: i64,
    pub endpoint: &'static str,
    pub key_id: Option<String>,
    pub user: Option<String>,
    pub team: Option<String>,
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
    pub guardrail_actions: Vec<String>,
    /// The client went away before the response was complete.
    pub client_disconnected: bool,
    /// The model the client asked for, when a limit sent the request to a cheaper one.
    pub downgraded_from: Option<String>,
}

/// Where batches of records are written.
pub trait RecordSink: Send + Sync + 'static {
    fn write<'a>(&'a self, batch: &'a [RequestRecord]) -> BoxFuture<'a, Result<(), String>>;
}

/// Writes every record as a structured log line (target `switchyard::request`).
pub struct LogSink;

impl RecordSink for LogSink {
    fn write<'a>(&'a self, batch: &'a [RequestRecord]) -> BoxFuture<'a, Result<(), String>> {
        for r in batch {
            let attempts = serde_json::to_string(&r.attempts).unwrap_or_default();
            tracing::info!(
                target: "switchyard::request",
                request_id = %r.request_id,
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
}

/// Writes to several sinks in turn.
pub struct FanOut(pub Vec<Arc<dyn RecordSink>>);

impl RecordSink for FanOut {
    fn write<'a>(&'a self, batch: &'a [RequestRecord]) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let mut errors = Vec::new();
            for sink in &self.0 {
                if let Err(e) = sink.write(batch).await {
                    errors.push(e);
                }
            }
            if errors.is_empty() {
                Ok(())
            } else {
                Err(errors.join("; "))
            }
        })
    }
}

const BATCH: usize = 512;
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// The hot-path handle: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<RequestRecord>,
    dropped: Arc<AtomicU64>,
}

/// The background writer; await [`RecorderTask::finish`] on shutdown to drain the buffer.
pub struct RecorderTask {
    handle: tokio::task::JoinHandle<()>,
    close: tokio::sync::oneshot::Sender<()>,
}

impl Recorder {
    pub fn spawn(sink: Arc<dyn RecordSink>, buffer: usize) -> (Recorder, RecorderTask) {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        let (close, closed) = tokio::sync::oneshot::channel();
        let handle = tokio::spawn(write_loop(rx, closed, sink));
        (
            Recorder {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
            },
            RecorderTask { handle, close },
        )
    }

    pub fn record(&self, record: RequestRecord) {
        if let Err(e) = self.tx.try_send(record) {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // One warning per power of two keeps a flood of drops from flooding the log.
            if n.is_power_of_two() {
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "the record buffer is full",
                    mpsc::error::TrySendError::Closed(_) => "the record writer has stopped",
                };
                tracing::warn!(dropped_total = n, "request record dropped: {why}");
            }
        }
    }

    /// Records dropped since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl RecorderTask {
    /// Stops accepting records (later ones are counted as dropped) and waits until every
    /// record already buffered is written.
    pub async fn finish(self) {
        let _ = self.close.send(());
        let _ = self.handle.await;
    }
}

async fn write_loop(
    mut rx: mpsc::Receiver<RequestRecord>,
    mut closed: tokio::sync::oneshot::Receiver<()>,
    sink: Arc<dyn RecordSink>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut closing = false;
    loop {
        let n = if closing {
            rx.recv_many(&mut batch, BATCH).await
        } else {
            tokio::select! {
                n = rx.recv_many(&mut batch, BATCH) => n,
                _ = &mut closed => {
                    // Shutdown: refuse new records, then drain what is buffered.
                    closing = true;
                    rx.close();
                    continue;
                }
            }
        };
        if n == 0 {
            return; // every sender dropped and the buffer is empty
        }
        // Give a burst a moment to fill the batch: fewer, larger writes.
        if batch.len() < BATCH {
            let deadline = tokio::time::sleep(FLUSH_EVERY);
            tokio::pin!(deadline);
            while batch.len() < BATCH {
                let room = BATCH - batch.len();
                tokio::select! {
                    _ = &mut deadline => break,
                    n = rx.recv_many(&mut batch, room) => if n == 0 { break },
                }
            }
        }
        if let Err(e) = sink.write(&batch).await {
            tracing::error!(records = batch.len(), "cannot write request records: {e}");
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Memory(Mutex<Vec<String>>);

    impl RecordSink for Memory {
        fn write<'a>(&'a self, batch: &'a [RequestRecord]) -> BoxFuture<'a, Result<(), String>> {
            self.0
                .lock()
                .unwrap()
                .extend(batch.iter().map(|r| r.request_id.clone()));
            Box::pin(std::future::ready(Ok(())))
        }
    }

    #[tokio::test]
    async fn records_are_written_and_drained_on_shutdown() {
        let sink = Arc::new(Memory::default());
        let (recorder, task) = Recorder::spawn(sink.clone(), 100);
        for i in 0..10 {
            recorder.record(RequestRecord {
                request_id: i.to_string(),
                ..Default::default()
            });
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
        let (recorder, task) = Recorder::spawn(sink.clone(), 2);
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
