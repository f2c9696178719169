//! Rules for what common crates emit, each checked against the upstream
//! source at the version named in its documentation.
//!
//! [`TimelineLayer::new`](super::TimelineLayer::new) installs [`all`] of
//! them. Each function is the one place that knows its crate's target, names
//! and fields: when a new release renames a field, the fix is one edit here.
//!
//! ```
//! use timeline_core::integrations::tracing::{TimelineLayer, presets};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! // Only SQL, from sqlx and sea-orm:
//! let layer = TimelineLayer::empty().rule(presets::sqlx()).rule(presets::sea_orm());
//! let subscriber = tracing_subscriber::registry().with(layer);
//! # drop(subscriber);
//! ```

use super::rule::Rule;

/// Every preset below, in the order `TimelineLayer::new` installs them.
///
/// ```
/// use timeline_core::integrations::tracing::presets;
///
/// assert_eq!(presets::all().len(), 5);
/// ```
pub fn all() -> Vec<Rule> {
    vec![
        sqlx(),
        sea_orm(),
        reqwest_tracing(),
        tower_http_client(),
        aws_sdk(),
    ]
}

/// sqlx's per-query **event**, as one `SQL-main` action per statement.
///
/// Checked against sqlx-core 0.8.6 (`src/logger.rs`, `QueryLogger::finish`):
/// when a query finishes, sqlx emits an event with target `sqlx::query` at
/// the connection's `statements_level` (DEBUG by default; WARN for
/// statements slower than `slow_statements_duration`, 1 s by default), but
/// only if that level is enabled for the target — the bridge's own filter
/// enables it, so no other filter needs to. Fields read:
///
/// - `db.statement`: the whole statement, wrapped in blank lines — or empty
///   when the statement has four words or fewer; then
/// - `summary`: its first four words, which is the whole statement exactly
///   when `db.statement` is empty;
/// - `elapsed_secs` (an `f64` of seconds), else `elapsed` (a `Duration`
///   written with `Debug`).
///
/// sqlx does not name the database in the event, so every statement is
/// `SQL-main` — but connection set-up, `SQL-connect`: sqlx-sqlite's
/// `connect` (`options/connect.rs`) runs the connection's `PRAGMA`s as one
/// statement, `PRAGMA foreign_keys = ON; ` and the like, which lands on the
/// request whose pool opened the connection. A statement made only of
/// `PRAGMA name = value;` assignments, as sqlx writes them, is taken for
/// it (findings and the [`testing`](crate::testing) counts leave it out).
/// sqlx-postgres 0.8 logs nothing while it connects. For SQLite, sqlx runs
/// the statement and emits the event on its worker thread, inside the
/// caller's span: the bridge finds the request's timeline through that
/// span (see the module documentation).
///
/// **What it cannot tell.** The event has no error field, in sqlx 0.8.6
/// and 0.9 alike, for every database (`QueryLogger` logs the statement
/// whether it failed or not, and sqlx-postgres reports a server's error
/// only in the `Result`): every statement's outcome is
/// [`NotReported`](crate::Outcome::NotReported), never `ok`. The duration
/// is the driver's own (`elapsed_secs`, measured from just after the
/// statement was prepared), and the action ends when the event fires. On
/// SQLite the worker sends the rows, or the error, to the caller before
/// it emits the event: the tower layer waits for it (see
/// [`RequestTimelineLayer`](crate::integrations::tower::RequestTimelineLayer),
/// "settle").
///
/// ```
/// # use timeline_core::integrations::tracing::{TimelineLayer, presets};
/// let layer = TimelineLayer::empty().rule(presets::sqlx());
/// # let _: &TimelineLayer = &layer;
/// ```
pub fn sqlx() -> Rule {
    Rule::events()
        .target("sqlx::query")
        .category("SQL-main")
        .category_when("db.statement", is_sqlx_connection_set_up, "SQL-connect")
        .detail_field("db.statement")
        .detail_field("summary")
        .duration_field("elapsed_secs")
        .duration_field("elapsed")
        .outcome_not_reported()
}

/// sea-orm's statement **spans** (feature `tracing-spans`), as `SQL-main`
/// actions.
///
/// Checked against sea-orm 2.0 (`src/database/tracing_spans.rs`, macros
/// `db_span!` and `with_db_span!`, and their uses in `db_connection.rs` and
/// `transaction.rs`): an INFO span per statement, named `sea_orm.execute`,
/// `sea_orm.query_one`, `sea_orm.query_all`, `sea_orm.begin`… with target
/// `sea_orm::database::…`, entered while sea-orm awaits the driver. When
/// the driver returns, sea-orm records `otel.status_code` (`OK` or
/// `ERROR`) and, for an error, `exception.message`. Fields read:
///
/// - `db.statement` (recorded right after the span is created, when the
///   statement is safe to log), else `db.operation` (`SELECT`, `INSERT`,
///   `UPDATE`, `DELETE` or `EXECUTE`);
/// - `otel.status_code`: the statement is done. The action ends there, not
///   when the span closes: sqlx's SQLite worker keeps a clone of the span
///   until after it has sent the rows, which would stretch the action and
///   make the next statement look concurrent. Without it (sea-orm's `sync`
///   feature records none) the outcome is
///   [`NotReported`](crate::Outcome::NotReported);
/// - `exception.message`: the error, with the driver's text.
///
/// sea-orm runs its statements through sqlx, whose own event arrives inside
/// the sea-orm span: it is part of that action, not recorded twice, and
/// gives it the driver's timing ([`Rule::timed_by_driver`]): the action
/// lasts what sqlx measured and ends when sqlx's event fired.
///
/// ```
/// # use timeline_core::integrations::tracing::{TimelineLayer, presets};
/// let layer = TimelineLayer::empty().rule(presets::sea_orm());
/// # let _: &TimelineLayer = &layer;
/// ```
pub fn sea_orm() -> Rule {
    Rule::spans()
        .target("sea_orm")
        .has_field("db.statement")
        .has_field("db.operation")
        .category("SQL-main")
        .detail_field("db.statement")
        .detail_field("db.operation")
        .error("{exception.message}")
        .error_when("otel.status_code", is_error_word, "{otel.status_code}")
        .outcome_field("otel.status_code")
        .timed_by_driver()
}

/// reqwest-tracing's client **spans** (with `reqwest-middleware`), as
/// `HTTP-GET`, `HTTP-POST`… actions with the URL as detail.
///
/// Checked against reqwest-tracing 0.7.1 (`src/reqwest_otel_span_macro.rs`,
/// `src/reqwest_otel_span_builder.rs`): `reqwest_otel_span!` creates a span
/// named `HTTP request` (INFO by default; its target is the module that
/// invokes the macro, so it is not used). Fields read:
///
/// - `http.request.method`: the category's suffix;
/// - `url.full` (with `SpanBackendWithUrl`), else
///   `{url.scheme}://{server.address}:{server.port}` (the default
///   `DefaultSpanBackend` leaves the path out);
/// - `error.message`, recorded when the request failed (connection refused,
///   timeout); else `http.response.status_code` when it is 500 or more: the
///   error (`HTTP 503`). A status below 500 is a response the server
///   gave, reported as such: the outcome is `ok` (a 404 from an API is
///   an answer, not a failure of the call);
/// - `http.response.status_code`, `otel.status_code` or `error.message`:
///   reqwest-tracing records them when the response or the error arrives,
///   and the action ends then. A span that closes without any (its future
///   dropped mid-request) has the outcome
///   [`NotReported`](crate::Outcome::NotReported).
///
/// ```
/// # use timeline_core::integrations::tracing::{TimelineLayer, presets};
/// let layer = TimelineLayer::empty().rule(presets::reqwest_tracing());
/// # let _: &TimelineLayer = &layer;
/// ```
pub fn reqwest_tracing() -> Rule {
    Rule::spans()
        .name("HTTP request")
        .has_field("http.request.method")
        .category("HTTP-{http.request.method}")
        .detail_field("url.full")
        .detail("{url.scheme}://{server.address}:{server.port}")
        .error("{error.message}")
        .error_when(
            "http.response.status_code",
            is_server_error_status,
            "HTTP {http.response.status_code}",
        )
        .outcome_field("http.response.status_code")
        .outcome_field("otel.status_code")
        .outcome_field("error.message")
}

/// tower-http's `TraceLayer` **spans** around an HTTP *client* (a
/// `hyper_util` client wrapped in `TraceLayer::new_for_http()`), as
/// `HTTP-GET`… actions with the URI as detail.
///
/// Checked against tower-http 0.6.11 and 0.7.1 (`src/trace/make_span.rs`,
/// `DefaultMakeSpan`): a span named `request` with target
/// `tower_http::trace::make_span` (DEBUG by default). Fields read: `method`
/// (the category's suffix) and `uri` (the detail).
///
/// The same span wraps every request a *server* handles; a server sees
/// origin-form URIs (`/bugs/1`), a client absolute ones
/// (`http://host/bugs/1`), so only spans whose `uri` contains `://` are
/// recorded: the server's own span is never mistaken for an external call.
/// tower-http reports the status and failures in events, not on the span,
/// so the outcome is [`NotReported`](crate::Outcome::NotReported). The span
/// closes when the response body is dropped: the action includes reading it.
///
/// ```
/// # use timeline_core::integrations::tracing::{TimelineLayer, presets};
/// let layer = TimelineLayer::empty().rule(presets::tower_http_client());
/// # let _: &TimelineLayer = &layer;
/// ```
pub fn tower_http_client() -> Rule {
    Rule::spans()
        .target("tower_http::trace")
        .name("request")
        .has_field("uri")
        .when("uri", is_absolute_uri)
        .category("HTTP-{method}")
        .detail_field("uri")
        .outcome_not_reported()
}

/// The AWS SDK's operation **spans**, as `AWS-S3`, `AWS-STS`… actions with
/// the operation as detail (`GetObject`).
///
/// Checked against aws-sdk-sts 1.124.0 (generated
/// `src/operation/get_caller_identity.rs`: a DEBUG span named
/// `STS.GetCallerIdentity` with target `aws_sdk_sts::operation::…`) and
/// aws-smithy-runtime 1.16.2 (`src/client/orchestrator/operation.rs`:
/// `invoke`), both with fields `rpc.service` and `rpc.method`; retries and
/// (de)serialisation run in child spans without them. Fields read:
/// `rpc.service` (the category's suffix) and `rpc.method` (the detail).
/// The SDK reports errors in events only, so the outcome is
/// [`NotReported`](crate::Outcome::NotReported).
///
/// ```
/// # use timeline_core::integrations::tracing::{TimelineLayer, presets};
/// let layer = TimelineLayer::empty().rule(presets::aws_sdk());
/// # let _: &TimelineLayer = &layer;
/// ```
pub fn aws_sdk() -> Rule {
    Rule::spans()
        .target("aws_")
        .has_field("rpc.service")
        .has_field("rpc.method")
        .category("AWS-{rpc.service}")
        .detail_field("rpc.method")
        .outcome_not_reported()
}

fn is_server_error_status(status: &str) -> bool {
    status.parse::<u16>().is_ok_and(|status| status >= 500)
}

fn is_error_word(status: &str) -> bool {
    status.eq_ignore_ascii_case("error")
}

/// Whether a statement is what sqlx-sqlite 0.8's `connect` runs to set a
/// connection up (`SqliteConnectOptions::pragma_string`): one or more
/// `PRAGMA name = value;`, one space apart (the last one's trailing space
/// trimmed, as every field is).
fn is_sqlx_connection_set_up(statement: &str) -> bool {
    let assignment = |pragma: &str| {
        pragma
            .strip_prefix("PRAGMA ")
            .and_then(|rest| rest.strip_suffix(';'))
            .and_then(|rest| rest.split_once(" = "))
            .is_some_and(|(name, value)| {
                !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !value.trim().is_empty()
                    && !value.contains(';')
            })
    };
    !statement.is_empty()
        && statement
            .split_inclusive("; ")
            .all(|p| assignment(p.trim_end()))
}

fn is_absolute_uri(uri: &str) -> bool {
    uri.contains("://")
}

#[cfg(test)]
mod tests {
    use super::is_sqlx_connection_set_up;

    #[test]
    fn sqlx_sqlite_s_connect_pragmas_are_connection_set_up() {
        for set_up in [
            "PRAGMA foreign_keys = ON;",
            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
            "PRAGMA key = 'secret';",
        ] {
            assert!(is_sqlx_connection_set_up(set_up), "{set_up}");
        }
        for statement in [
            "",
            "PRAGMA foreign_keys",
            "PRAGMA foreign_keys = ON",
            "PRAGMA optimize;",
            "PRAGMA foreign_keys = ON; SELECT 1;",
            "SELECT 'PRAGMA a = 1;'",
            "PRAGMA a = ;",
            "PRAGMA a b = 1;",
        ] {
            assert!(!is_sqlx_connection_set_up(statement), "{statement}");
        }
    }
}
