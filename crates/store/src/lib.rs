//! SQLite and PostgreSQL storage for Switchyard, behind one [`Database`] handle, and the Redis
//! state that replicas share ([`redis`]: rate-limit and budget counters, key-change pub/sub).
//!
//! This crate owns the SQL: the connection pools ([`db`]), the schema and its migrations
//! (`migrations/sqlite` and `migrations/postgres`, one table per kind of state, the same columns
//! on both), and the implementations of `switchyard-core`'s storage traits on top of them
//! ([`records`]: the request log behind `RecordSink`, and the queries that read it back;
//! [`governance`]: virtual keys, users, teams and the audit log, `KeyLookup`, and the spend
//! history that budget windows start from; [`reports`]: usage, latency and events reports
//! over the hourly rollups of the log; [`responses`]: the Responses API responses kept for
//! `previous_response_id`, `ResponseStore`).
//!
//! It owns neither the traits nor the batching: `switchyard-core` defines what is stored and
//! decides when; the server decides which database (the `database.url` setting) and
//! whether there is one at all (`none`).

pub mod cache;
pub mod db;
pub mod error;
pub mod governance;
pub mod records;
pub mod redis;
pub mod reports;
pub mod responses;

pub use self::redis::{KeyEvents, RedisCounters};
pub use db::{Database, connect, connect_postgres_schema, mask_url};
pub use error::StoreError;
pub use governance::{AuditEntry, KeyFilter, MemberKind, SpendScope};
pub use records::feedback::{Feedback, FeedbackTarget};
pub use records::search::{
    Cursor, ReplayLinks, RequestFilter, RequestPage, RequestRow, StatusFilter,
};
pub use records::upkeep::{SpendOwner, SpendWindow};
pub use records::{StoredAttempt, StoredRequest};
pub use reports::{
    Dimension, EventsReport, GroupBy, LatencyReport, ReportError, TimeBucket, TimeRange,
    UsageQuery, UsageReport,
};
pub use sqlx::{PgPool, SqlitePool};
