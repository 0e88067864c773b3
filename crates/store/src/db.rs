//! Connecting: the [`Database`] handle (an SQLite or a PostgreSQL pool), URL parsing, pool
//! settings and the schema migrations run at connect time.
//!
//! `sqlite://FILE` creates the file if it is missing and opens it in WAL mode (readers never
//! wait for the writer; `synchronous=NORMAL` is durable across process crashes, and loses at
//! most the last commits on power loss); `sqlite::memory:` is a private in-memory database that
//! lives as long as the handle. `postgres://…` and `postgresql://…` take every option of libpq's
//! URLs that sqlx understands. A database that does not answer fails within seconds, with the
//! URL (password masked) in the message, instead of hanging the start of the server.
//!
//! This module does not know what is stored: the queries live in [`crate::records`].

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgPool, SqlitePool};

use crate::error::StoreError;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a new connection may take before the database is declared unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a query waits for a free (or new) pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an SQLite statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite serializes writers anyway; a few connections let reports read during a write.
const SQLITE_MAX_CONNECTIONS: u32 = 4;
const POSTGRES_MAX_CONNECTIONS: u32 = 8;

pub(crate) const SQLITE: &str = "SQLite";
pub(crate) const POSTGRES: &str = "PostgreSQL";

/// A migrated database: one pool of either kind. Cloning is cheap (the pools are shared).
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Database {
    /// Connects to `url` and brings its schema up to date.
    ///
    /// `sqlite://FILE` (created if missing), `sqlite::memory:`, `postgres://…` or
    /// `postgresql://…`. Anything else, `none` included, is an error: the caller decides what
    /// "no database" means.
    pub async fn connect(url: &str) -> Result<Database, StoreError> {
        let url = url.trim();
        match Scheme::of(url)? {
            Scheme::Sqlite => connect_sqlite(url).await,
            Scheme::Postgres => {
                let options = parse_postgres(url)?;
                connect_postgres(url, options, None).await
            }
        }
    }

    /// Connects to PostgreSQL with `schema` first on the `search_path`, creating the schema if
    /// it is missing, and migrates it: the tables live in that schema, not in `public`. Lets
    /// several independent Switchyard databases (or tests) share one PostgreSQL database.
    pub async fn connect_postgres_schema(url: &str, schema: &str) -> Result<Database, StoreError> {
        let url = url.trim();
        if !is_identifier(schema) {
            return Err(StoreError::InvalidSchema(schema.to_owned()));
        }
        match Scheme::of(url)? {
            Scheme::Postgres => {}
            Scheme::Sqlite => {
                return Err(StoreError::UnsupportedScheme {
                    scheme: "sqlite".into(),
                    url: format!("{} (a schema needs postgres://…)", mask_url(url)),
                });
            }
        }
        let options = parse_postgres(url)?.options([("search_path", schema)]);
        connect_postgres(url, options, Some(schema)).await
    }

    /// `"SQLite"` or `"PostgreSQL"`, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => SQLITE,
            Database::Postgres(_) => POSTGRES,
        }
    }

    /// Closes every connection, waiting for the ones in use to be returned.
    pub async fn close(&self) {
        match self {
            Database::Sqlite(pool) => pool.close().await,
            Database::Postgres(pool) => pool.close().await,
        }
    }
}

/// Shorthand for [`Database::connect`].
pub async fn connect(url: &str) -> Result<Database, StoreError> {
    Database::connect(url).await
}

/// Shorthand for [`Database::connect_postgres_schema`].
pub async fn connect_postgres_schema(url: &str, schema: &str) -> Result<Database, StoreError> {
    Database::connect_postgres_schema(url, schema).await
}

enum Scheme {
    Sqlite,
    Postgres,
}

impl Scheme {
    fn of(url: &str) -> Result<Scheme, StoreError> {
        if url.eq_ignore_ascii_case("none") {
            return Err(StoreError::NoDatabase { url: url.into() });
        }
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Scheme::Sqlite),
            "postgres" | "postgresql" => Ok(Scheme::Postgres),
            _ => Err(StoreError::UnsupportedScheme {
                scheme: scheme.into(),
                url: mask_url(url),
            }),
        }
    }
}

async fn connect_sqlite(url: &str) -> Result<Database, StoreError> {
    let shown = mask_url(url);
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|source| StoreError::InvalidUrl {
            kind: SQLITE,
            url: shown.clone(),
            source,
        })?
        .busy_timeout(BUSY_TIMEOUT);
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let pool = if in_memory {
        // The database lives as long as one connection to it: keep exactly one, forever.
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        SqlitePoolOptions::new().max_connections(SQLITE_MAX_CONNECTIONS)
    };
    let options = if in_memory {
        options
    } else {
        options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
    };
    let pool = pool
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|source| connect_error(SQLITE, &shown, source))?;
    SQLITE_MIGRATIONS
        .run(&pool)
        .await
        .map_err(|source| StoreError::Migrate {
            kind: SQLITE,
            url: shown.clone(),
            source,
        })?;
    tracing::info!(url = %shown, "connected to SQLite");
    Ok(Database::Sqlite(pool))
}

fn parse_postgres(url: &str) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(url).map_err(|source| StoreError::InvalidUrl {
        kind: POSTGRES,
        url: mask_url(url),
        source,
    })
}

async fn connect_postgres(
    url: &str,
    options: PgConnectOptions,
    schema: Option<&str>,
) -> Result<Database, StoreError> {
    let shown = mask_url(url);
    // One direct connection first: the pool retries a refused connection until its acquire
    // timeout and then reports only "timed out", which hides the cause from the user.
    let mut conn =
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(source)) => return Err(connect_error(POSTGRES, &shown, source)),
            Err(_) => {
                return Err(StoreError::ConnectTimeout {
                    kind: POSTGRES,
                    url: shown,
                    seconds: CONNECT_TIMEOUT.as_secs(),
                });
            }
        };
    if let Some(schema) = schema {
        // `schema` is a checked identifier: quoting it is enough.
        let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .map_err(|source| StoreError::Query {
                kind: POSTGRES,
                source,
            })?;
    }
    // Migrations take an advisory lock: replicas starting together migrate once.
    let migrated = POSTGRES_MIGRATIONS.run(&mut conn).await;
    let _ = conn.close().await;
    migrated.map_err(|source| StoreError::Migrate {
        kind: POSTGRES,
        url: shown.clone(),
        source,
    })?;
    let pool = PgPoolOptions::new()
        .max_connections(POSTGRES_MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|source| connect_error(POSTGRES, &shown, source))?;
    tracing::info!(url = %shown, schema = schema.unwrap_or("-"), "connected to PostgreSQL");
    Ok(Database::Postgres(pool))
}

fn connect_error(kind: &'static str, shown: &str, source: sqlx::Error) -> StoreError {
    if matches!(source, sqlx::Error::PoolTimedOut) {
        return StoreError::ConnectTimeout {
            kind,
            url: shown.to_owned(),
            seconds: ACQUIRE_TIMEOUT.as_secs(),
        };
    }
    StoreError::Connect {
        kind,
        url: shown.to_owned(),
        source,
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

/// `url` with its password replaced by `***` (in the user info and in a `password=` query
/// parameter), for messages and logs.
///
/// Errs on the side of hiding: with an unencoded `@` or `/` in the password, more than the
/// password may be masked, never less.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return mask_query_password(url);
    };
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) if !user.contains(['/', '?']) => format!("{user}:***@{host}"),
            Some(_) => format!("***@{host}"),
            None => rest.to_owned(),
        },
        None => rest.to_owned(),
    };
    mask_query_password(&format!("{scheme}://{rest}"))
}

fn mask_query_password(url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    let mut out = String::with_capacity(url.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find("password=") {
        let start = search + found;
        let at_param = start > 0 && matches!(url.as_bytes()[start - 1], b'?' | b'&');
        let value = start + "password=".len();
        search = value;
        if !at_param {
            continue;
        }
        let end = url[value..]
            .find(['&', '#'])
            .map_or(url.len(), |i| value + i);
        out.push_str(&url[copied..value]);
        out.push_str("***");
        copied = end;
        search = end;
    }
    out.push_str(&url[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_url("postgres://app:s3cret@db.example:5432/sw"),
            "postgres://app:***@db.example:5432/sw"
        );
        assert_eq!(
            mask_url("postgres://app:p@ss/w:rd@db/sw"),
            "postgres://app:***@db/sw"
        );
        assert_eq!(
            mask_url("postgres://db/sw?user=app&password=s3cret&sslmode=require"),
            "postgres://db/sw?user=app&password=***&sslmode=require"
        );
        assert_eq!(mask_url("postgres://app@db/sw"), "postgres://app@db/sw");
        assert_eq!(mask_url("sqlite://switchyard.db"), "sqlite://switchyard.db");
        assert_eq!(mask_url("sqlite::memory:"), "sqlite::memory:");
    }

    #[test]
    fn schema_names_are_identifiers() {
        assert!(is_identifier("sy_test_1234"));
        assert!(is_identifier("_x"));
        assert!(!is_identifier("1x"));
        assert!(!is_identifier("a\"; DROP TABLE x; --"));
        assert!(!is_identifier(""));
    }
}
