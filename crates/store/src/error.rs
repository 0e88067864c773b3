//! The errors of the store: bad URLs, unreachable databases, failed migrations and queries.
//!
//! Every message names what the user can act on (the URL, with its password masked, and the kind
//! of database) and never carries a secret. Errors of the `RecordSink` and `KeyLookup` traits
//! are plain strings built from these; this module does not decide what the caller does with
//! them.

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no database this build knows.
    #[error("unsupported scheme {scheme:?} in {url}; use sqlite://FILE, postgres://… or none")]
    UnsupportedScheme { scheme: String, url: String },

    /// `none` means "no database": the caller should not connect at all.
    #[error("{url:?} means no database; there is nothing to connect to")]
    NoDatabase { url: String },

    /// The URL has a known scheme but cannot be parsed.
    #[error("invalid {kind} URL {url}: {source}")]
    InvalidUrl {
        kind: &'static str,
        url: String,
        #[source]
        source: sqlx::Error,
    },

    /// A Postgres schema name that is not a plain identifier.
    #[error(
        "invalid schema name {0:?}: use letters, digits and underscores, not starting with a digit"
    )]
    InvalidSchema(String),

    /// The database did not accept a connection.
    #[error("cannot connect to {kind} at {url}: {source}")]
    Connect {
        kind: &'static str,
        url: String,
        #[source]
        source: sqlx::Error,
    },

    /// The database did not answer in time.
    #[error("cannot connect to {kind} at {url}: no answer within {seconds} s")]
    ConnectTimeout {
        kind: &'static str,
        url: String,
        seconds: u64,
    },

    /// The schema migrations failed (or the database was migrated by a newer Switchyard).
    #[error("cannot migrate the {kind} database at {url}: {source}")]
    Migrate {
        kind: &'static str,
        url: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A statement failed.
    #[error("{kind} query failed: {source}")]
    Query {
        kind: &'static str,
        #[source]
        source: sqlx::Error,
    },

    /// A stored row could not be turned back into a value (for example, malformed JSON).
    #[error("{kind}: request {request_id}: stored {column} is not valid: {reason}")]
    Corrupt {
        kind: &'static str,
        request_id: String,
        column: &'static str,
        reason: String,
    },

    /// A row of a governance table could not be turned back into a value.
    #[error("{kind}: {table} {id:?}: stored {column} is not valid: {reason}")]
    CorruptRow {
        kind: &'static str,
        table: &'static str,
        id: String,
        column: &'static str,
        reason: String,
    },

    /// An insert met a row with the same identity (id, or a key's hash).
    /// Writing the request log failed.
    #[error("cannot write request records to {kind} ({reason})")]
    Write { kind: &'static str, reason: String },

    #[error("{kind}: {what} already exists")]
    Conflict { kind: &'static str, what: String },

    /// A value that could not be stored, or not read back as it was written (a NUL character,
    /// a budget that is not a number).
    #[error("{kind}: cannot store {what}: {reason}")]
    Invalid {
        kind: &'static str,
        what: String,
        reason: String,
    },
}
