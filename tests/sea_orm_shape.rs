//! sea-orm 2.0's statement spans without sea-orm: [`with_db_span`] makes
//! and records the span exactly as sea-orm's `with_db_span!` macro does
//! (`src/database/tracing_spans.rs`, feature `tracing-spans`, not `sync`),
//! around any driver call, so that tests can run real sqlx statements
//! inside the spans sea-orm would wrap them in.
//!
//! sea-orm itself is not a dependency of the tests: it would bring sqlx 0.9
//! beside the 0.8 they use. What the bridge sees is the same: an INFO span
//! named `sea_orm.…` with target `sea_orm::database::db_connection` and the
//! fields `otel.kind`, `db.system`, `db.operation`, `db.statement`,
//! `otel.status_code` and `exception.message`; the driver call instrumented
//! with a clone of it; then `otel.status_code` (`OK` or `ERROR`) and, for an
//! error, `exception.message` recorded on it.

use std::fmt::Display;

use tracing::Instrument;
use tracing::field::{Empty, display};

/// The span names of sea-orm 2.0 that [`with_db_span`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbSpan {
    /// `sea_orm.execute`: `ConnectionTrait::execute_raw`.
    Execute,
    /// `sea_orm.query_one`: `ConnectionTrait::query_one_raw`.
    QueryOne,
    /// `sea_orm.query_all`: `ConnectionTrait::query_all_raw`.
    QueryAll,
}

/// `DbOperation::from_sql`: the statement's first word, if it is one of
/// these.
fn operation(sql: &str) -> &'static str {
    let first = sql.split_whitespace().next().unwrap_or("");
    ["SELECT", "INSERT", "UPDATE", "DELETE"]
        .into_iter()
        .find(|op| first.eq_ignore_ascii_case(op))
        .unwrap_or("EXECUTE")
}

/// Runs `call` as sea-orm 2.0 runs a statement with `tracing-spans`: inside
/// a new `sea_orm.…` span (a child of the current one) with the statement
/// recorded, then records the result on the span. `system` is sea-orm's
/// `db.system`: `sqlite`, `postgresql` or `mysql`.
///
/// ```
/// use timeline_core::Timeline;
/// use timeline_core::integrations::tracing::TimelineLayer;
/// use timeline_tests::future::block_on;
/// use timeline_tests::sea_orm_shape::{DbSpan, with_db_span};
/// use tracing_subscriber::prelude::*;
///
/// let subscriber = tracing_subscriber::registry().with(TimelineLayer::new());
/// let timeline = Timeline::new();
/// tracing::subscriber::with_default(subscriber, || {
///     timeline.scope(|| {
///         let failed = block_on(with_db_span(DbSpan::Execute, "sqlite", "INSERT INTO bug VALUES (1)", async {
///             Err::<(), _>("UNIQUE constraint failed: bug.id")
///         }));
///         assert!(failed.is_err());
///     })
/// });
/// let actions = timeline.actions();
/// assert_eq!(actions[0].detail(), "INSERT INTO bug VALUES (1)");
/// assert_eq!(actions[0].outcome().to_string(), "error: UNIQUE constraint failed: bug.id");
/// ```
pub async fn with_db_span<T, E: Display>(
    name: DbSpan,
    system: &'static str,
    sql: &str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    // `db_span!`: one call site per name, as sea-orm's macro expands in
    // each method; the target is the module that expands it.
    let op = operation(sql);
    let span = match name {
        DbSpan::Execute => tracing::info_span!(
            target: "sea_orm::database::db_connection",
            "sea_orm.execute",
            otel.kind = "client",
            db.system = system,
            db.operation = %op,
            db.statement = Empty,
            otel.status_code = Empty,
            exception.message = Empty,
        ),
        DbSpan::QueryOne => tracing::info_span!(
            target: "sea_orm::database::db_connection",
            "sea_orm.query_one",
            otel.kind = "client",
            db.system = system,
            db.operation = %op,
            db.statement = Empty,
            otel.status_code = Empty,
            exception.message = Empty,
        ),
        DbSpan::QueryAll => tracing::info_span!(
            target: "sea_orm::database::db_connection",
            "sea_orm.query_all",
            otel.kind = "client",
            db.system = system,
            db.operation = %op,
            db.statement = Empty,
            otel.status_code = Empty,
            exception.message = Empty,
        ),
    };
    // `with_db_span!` with `record_stmt = true`.
    span.record("db.statement", sql);
    let result = call.instrument(span.clone()).await;
    // `record_query_result`.
    match &result {
        Ok(_) => {
            span.record("otel.status_code", "OK");
        }
        Err(e) => {
            span.record("otel.status_code", "ERROR");
            span.record("exception.message", display(e));
        }
    }
    result
}
