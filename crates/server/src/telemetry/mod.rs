//! Telemetry derived from request records, off the hot path: every exporter here is a
//! [`RecordSink`](switchyard_core::record::RecordSink) that the record writer calls with batches
//! of finished requests, so nothing in the request pipeline waits for a collector.

pub mod metrics;
pub mod otlp;
