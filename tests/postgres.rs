//! A schema of its own for each PostgreSQL test, on the cluster that
//! `scripts/test` starts.
//!
//! `scripts/test` starts a throwaway cluster and puts its address in
//! `TIMELINE_POSTGRES_URL`; [`TestSchema::create`] makes a fresh schema
//! there for one test, and a URL whose connections see only that schema, so
//! that tests running in parallel never see each other's tables; the schema
//! is dropped when the test ends. (A schema, not a database: `CREATE
//! DATABASE` copies a template and took 300 ms a test, a schema 1 ms.)
//!
//! Without the variable, or with a server that does not answer, the test
//! fails with a message that says why and how to run it: the PostgreSQL
//! tests are never skipped.
//!
//! ```no_run
//! use diesel::connection::{Connection, SimpleConnection};
//! use diesel::pg::PgConnection;
//! use timeline_tests::postgres::TestSchema;
//!
//! let schema = TestSchema::create("example");
//! let mut conn = PgConnection::establish(schema.url())?;
//! conn.batch_execute("CREATE TABLE bug (id INTEGER PRIMARY KEY)")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use diesel::connection::{Connection, SimpleConnection};
use diesel::pg::PgConnection;

/// The environment variable that holds the cluster's URL, for example
/// `postgres://postgres@localhost:5432/timeline_tests?host=/tmp/timeline-postgres.X`
/// (a `host` starting with `/` is the directory of the server's Unix socket).
pub const URL_VARIABLE: &str = "TIMELINE_POSTGRES_URL";

/// Set by `scripts/test` instead of [`URL_VARIABLE`] when it could not
/// start the cluster: why not.
pub const UNAVAILABLE_VARIABLE: &str = "TIMELINE_POSTGRES_UNAVAILABLE";

const HOW_TO_RUN: &str = "The PostgreSQL tests need a server: run them with `scripts/test` \
     (for example `scripts/test --test integration_postgres`), which installs Debian's \
     `postgresql` when missing, starts a throwaway cluster and sets TIMELINE_POSTGRES_URL; \
     or set TIMELINE_POSTGRES_URL to a server of your own whose user may create schemas.";

/// A schema made for one test on the cluster, dropped with this value.
#[derive(Debug)]
pub struct TestSchema {
    schema: String,
    url: String,
    cluster: String,
}

impl TestSchema {
    /// Creates an empty schema whose name holds `test` (letters, digits and
    /// `_` are kept, the rest replaced), unique to this process and call.
    ///
    /// # Panics
    ///
    /// When [`URL_VARIABLE`] is not set or the server does not answer, with
    /// a message that says why and names `scripts/test`. Blocks while it
    /// talks to the server (tens of milliseconds): call it before a
    /// runtime's work starts, not inside a busy task.
    pub fn create(test: &str) -> TestSchema {
        let cluster = cluster_url();
        let mut admin = connect(&cluster);
        let schema = schema_name(test);
        admin
            .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
            .unwrap_or_else(|e| panic!("could not create the schema {schema}: {e}"));
        let url = with_search_path(&cluster, &schema);
        TestSchema {
            schema,
            url,
            cluster,
        }
    }

    /// The URL of a connection whose `search_path` is the schema alone, so
    /// that unqualified names are the test's own, for sqlx
    /// (`PgPool::connect`) and diesel (`PgConnection::establish`) alike.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn schema(&self) -> &str {
        &self.schema
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // A failure leaves only a few tables on a throwaway cluster, so it
        // is told, not raised: a panic here could abort an unwinding test.
        let drop = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        let dropped = establish(&self.cluster)
            .map_err(|e| e.to_string())
            .and_then(|mut admin| admin.batch_execute(&drop).map_err(|e| e.to_string()));
        if let Err(e) = dropped {
            eprintln!("could not drop the test schema {}: {e}", self.schema);
        }
    }
}

/// The cluster's URL, or a panic that says why there is none.
fn cluster_url() -> String {
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => match std::env::var(UNAVAILABLE_VARIABLE) {
            Ok(why) => panic!("{}\n{HOW_TO_RUN}", why.trim_end()),
            Err(_) => panic!("{URL_VARIABLE} is not set.\n{HOW_TO_RUN}"),
        },
    }
}

/// A connection to `url`, with a bounded wait: a server that is gone fails
/// the test, never hangs it.
fn establish(url: &str) -> diesel::ConnectionResult<PgConnection> {
    let separator = if url.contains('?') { '&' } else { '?' };
    PgConnection::establish(&format!("{url}{separator}connect_timeout=10"))
}

fn connect(url: &str) -> PgConnection {
    establish(url).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {url} ({URL_VARIABLE}) does not answer:\n{}\n{HOW_TO_RUN}",
            e.to_string().trim_end()
        )
    })
}

/// `timeline_<test>_<process>_<call>`, within PostgreSQL's 63 bytes.
fn schema_name(test: &str) -> String {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let suffix = format!(
        "_{}_{}",
        std::process::id(),
        CALLS.fetch_add(1, Ordering::Relaxed)
    );
    let test: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(63 - "timeline_".len() - suffix.len())
        .collect();
    format!("timeline_{test}{suffix}")
}

/// `url` with the server option that sets `search_path` to `schema`, in
/// the `options` parameter that libpq and sqlx both read (percent-encoded:
/// `-c search_path=schema`). The schema's name needs no quoting.
fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_path_is_one_more_query_parameter() {
        assert_eq!(
            with_search_path("postgres://u@localhost:5432/main?host=/tmp/x", "t1"),
            "postgres://u@localhost:5432/main?host=/tmp/x&options=-c%20search_path%3Dt1"
        );
        assert_eq!(
            with_search_path("postgres://u:p@db.example/main", "t1"),
            "postgres://u:p@db.example/main?options=-c%20search_path%3Dt1"
        );
    }

    #[test]
    fn a_schema_name_is_short_lowercase_and_unique() {
        let long = "A Test::with-Everything".repeat(10);
        let first = schema_name(&long);
        let second = schema_name(&long);
        assert_ne!(first, second);
        assert!(first.len() <= 63, "{first}");
        assert!(
            first.starts_with("timeline_a_test__with_everything"),
            "{first}"
        );
        assert!(
            first
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{first}"
        );
    }
}
