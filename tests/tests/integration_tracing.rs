//! Spans and events emitted through `tracing` appear on the request's
//! timeline: found through the thread or through the span context.

use std::io;
use std::time::Duration;

use timeline_core::integrations::tracing::{Rule, TimelineLayer, presets};
use timeline_core::{Outcome, Timeline, WithTimeline};
use timeline_tests::checks::{details, log_categories};
use timeline_tests::future::block_on;
use timeline_tests::log::Buffer;
use tracing::Instrument;
use tracing::instrument::WithSubscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

fn sql_spans() -> Rule {
    Rule::spans()
        .target("sqlx")
        .name("query")
        .category("SQL-main")
        .detail_field("db.statement")
}

fn with_layer<R>(layer: TimelineLayer, f: impl FnOnce() -> R) -> R {
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f)
}

fn query(statement: &str) {
    let span = tracing::info_span!(target: "sqlx::query", "query", db.statement = statement);
    let _entered = span.enter();
    std::thread::sleep(Duration::from_millis(1));
}

/// What sqlx-core 0.8.6's `QueryLogger::finish` emits for a statement.
fn sqlx_event(statement: &str, elapsed: Duration) {
    let summary = statement
        .split_whitespace()
        .take(4)
        .collect::<Vec<_>>()
        .join(" ");
    let sql = if summary != statement {
        format!("\n\n{statement}\n")
    } else {
        String::new()
    };
    tracing::debug!(
        target: "sqlx::query",
        summary,
        db.statement = sql,
        rows_affected = 0u64,
        rows_returned = 1u64,
        ?elapsed,
        elapsed_secs = elapsed.as_secs_f64(),
    );
}

// --- spans --------------------------------------------------------------------

#[test]
fn selected_spans_become_actions_with_their_statement() {
    let timeline = Timeline::new();
    with_layer(TimelineLayer::empty().rule(sql_spans()), || {
        timeline.scope(|| {
            query("SELECT * FROM bug WHERE id = 1");
            query("SELECT * FROM person WHERE id = 2");
        })
    });
    let actions = timeline.actions();
    assert_eq!(
        details(&timeline),
        [
            "SELECT * FROM bug WHERE id = 1",
            "SELECT * FROM person WHERE id = 2"
        ]
    );
    assert!(actions.iter().all(|a| a.category() == "SQL-main"));
    assert!(
        actions
            .iter()
            .all(|a| a.duration().unwrap() >= Duration::from_millis(1))
    );
}

#[test]
fn spans_of_other_targets_and_names_are_ignored() {
    let timeline = Timeline::new();
    with_layer(TimelineLayer::empty().rule(sql_spans()), || {
        timeline.scope(|| {
            drop(
                tracing::info_span!(target: "hyper::client", "query", db.statement = "no")
                    .entered(),
            );
            let _b = tracing::info_span!(target: "sqlx::pool", "acquire").entered();
        })
    });
    assert!(timeline.is_empty());
}

#[test]
fn spans_and_events_outside_any_request_are_ignored() {
    let timeline = Timeline::new();
    with_layer(TimelineLayer::new().rule(sql_spans()), || {
        query("SELECT 1");
        sqlx_event("SELECT * FROM bug WHERE id = 1", Duration::from_millis(1));
        timeline.scope(|| sqlx_event("SELECT 2 FROM bug WHERE id = 2", Duration::ZERO));
    });
    assert_eq!(details(&timeline), ["SELECT 2 FROM bug WHERE id = 2"]);
}

#[test]
fn category_detail_and_error_come_from_fields_recorded_later() {
    let rule = Rule::spans()
        .name("http.request")
        .category("HTTP-{method}")
        .detail_field("url")
        .error("{error}");
    let timeline = Timeline::new();
    with_layer(TimelineLayer::empty().rule(rule), || {
        timeline.scope(|| {
            let span = tracing::info_span!(
                "http.request",
                method = "GET",
                url = tracing::field::Empty,
                error = tracing::field::Empty
            );
            span.record("url", tracing::field::display("https://example.com/a"));
            let entered = span.enter();
            span.record("error", "connection reset");
            drop(entered);
        })
    });
    let action = &timeline.actions()[0];
    assert_eq!(action.category(), "HTTP-GET");
    assert_eq!(action.detail(), "https://example.com/a");
    assert_eq!(
        action.outcome(),
        &Outcome::Error("connection reset".to_owned())
    );
}

#[test]
fn a_span_inside_a_recorded_span_is_part_of_its_action() {
    let timeline = Timeline::new();
    let layer = TimelineLayer::empty()
        .rule(
            Rule::spans()
                .name("transaction")
                .detail_field("db.statement"),
        )
        .rule(sql_spans());
    with_layer(layer, || {
        timeline.scope(|| {
            let _outer = tracing::info_span!("transaction", db.statement = "BEGIN").entered();
            query("INSERT INTO bug VALUES (1)");
        })
    });
    assert_eq!(details(&timeline), ["BEGIN"]);
    assert!(timeline.violations().is_empty());
}

#[test]
fn nested_rules_contain_the_actions_of_inner_spans() {
    let layer = TimelineLayer::empty()
        .rule(sql_spans())
        .rule(Rule::spans().name("transaction").nested());
    let timeline = Timeline::new();
    with_layer(layer, || {
        timeline.scope(|| {
            let _outer = tracing::info_span!("transaction").entered();
            query("INSERT INTO bug VALUES (1)");
            query("INSERT INTO bug VALUES (2)");
        })
    });
    let categories = log_categories(&timeline);
    assert_eq!(
        categories,
        [
            "transaction-start",
            "SQL-main",
            "SQL-main",
            "transaction-stop"
        ]
    );
    assert!(timeline.violations().is_empty());
}

#[test]
fn overlapping_sibling_spans_are_both_kept_one_as_concurrent() {
    let timeline = Timeline::new();
    with_layer(TimelineLayer::empty().rule(sql_spans()), || {
        timeline.scope(|| {
            let first =
                tracing::info_span!(target: "sqlx::query", "query", db.statement = "SELECT 1");
            let second =
                tracing::info_span!(target: "sqlx::query", "query", db.statement = "SELECT 2");
            let a = first.enter();
            let b = second.enter();
            drop((b, a));
        })
    });
    let actions = timeline.actions();
    assert_eq!(actions.len(), 2);
    assert_eq!(actions.iter().filter(|a| a.is_concurrent()).count(), 1);
    assert_eq!(timeline.violations().len(), 1);
}

#[test]
fn a_span_created_in_the_request_and_closed_on_another_thread_finishes_there() {
    let timeline = Timeline::new();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry().with(TimelineLayer::empty().rule(sql_spans())),
    );
    tracing::dispatcher::with_default(&dispatch, || {
        let span = timeline.scope(
            || tracing::info_span!(target: "sqlx::query", "query", db.statement = "SELECT 1"),
        );
        let dispatch = dispatch.clone();
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                // No timeline on this thread: the span knows its own.
                span.in_scope(|| std::thread::sleep(Duration::from_millis(1)));
                drop(span);
            })
        })
        .join()
        .unwrap();
    });
    let action = &timeline.actions()[0];
    assert_eq!(action.detail(), "SELECT 1");
    assert!(action.duration().unwrap() >= Duration::from_millis(1));
}

#[test]
fn a_span_that_never_closes_leaves_an_unfinished_action_and_no_panic() {
    let timeline = Timeline::new();
    with_layer(TimelineLayer::empty().rule(sql_spans()), || {
        timeline.scope(|| {
            let span =
                tracing::info_span!(target: "sqlx::query", "query", db.statement = "SELECT 1");
            std::mem::forget(span.enter());
            std::mem::forget(span);
        })
    });
    assert_eq!(timeline.actions()[0].duration(), None);
    assert_eq!(timeline.log_tuples().len(), 1);
}

#[test]
fn instrumented_futures_on_a_multi_thread_runtime_record_onto_their_own_timeline() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry().with(TimelineLayer::empty().rule(sql_spans())),
    );
    let timelines: Vec<Timeline> = (0..8).map(|_| Timeline::new()).collect();
    runtime.block_on(async {
        let tasks: Vec<_> = timelines
            .iter()
            .enumerate()
            .map(|(n, timeline)| {
                let dispatch = dispatch.clone();
                tokio::spawn(
                    async move {
                        for step in 0..3 {
                            let statement = format!("SELECT {n}.{step}");
                            async { tokio::time::sleep(Duration::from_millis(1)).await }
                                .instrument(tracing::info_span!(target: "sqlx::query", "query", db.statement = %statement))
                                .await;
                        }
                    }
                    .with_timeline(timeline.clone())
                    .with_subscriber(dispatch),
                )
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    for (n, timeline) in timelines.iter().enumerate() {
        assert_eq!(
            details(timeline),
            [
                format!("SELECT {n}.0"),
                format!("SELECT {n}.1"),
                format!("SELECT {n}.2")
            ]
        );
    }
}

#[test]
fn a_detail_filter_that_logs_does_not_deadlock_the_bridge() {
    let timeline = Timeline::builder()
        .detail_filter(|detail| {
            tracing::info!(target: "sqlx::query", "filtering {detail}");
            tracing::info_span!(target: "sqlx::query", "query", db.statement = "inner")
                .in_scope(|| detail.to_uppercase())
        })
        .build();
    with_layer(TimelineLayer::new().rule(sql_spans()), || {
        timeline.scope(|| {
            query("select 1");
            sqlx_event("select * from bug where id = 1", Duration::from_millis(1));
        })
    });
    let details = details(&timeline);
    // What the filter itself emits is not recorded: that would recurse.
    assert_eq!(details.len(), 2, "{details:?}");
    assert!(details.contains(&"SELECT 1".to_owned()), "{details:?}");
    assert!(
        details.contains(&"SELECT * FROM BUG WHERE ID = 1".to_owned()),
        "{details:?}"
    );
}

// --- events -------------------------------------------------------------------

#[test]
fn sqlx_events_become_actions_that_ended_when_they_fired() {
    let timeline = Timeline::new();
    with_layer(TimelineLayer::new(), || {
        timeline.scope(|| {
            std::thread::sleep(Duration::from_millis(5));
            sqlx_event("SELECT * FROM bug WHERE id = 1", Duration::from_millis(3));
            sqlx_event("BEGIN", Duration::from_micros(10));
        })
    });
    let actions = timeline.actions();
    assert_eq!(
        details(&timeline),
        ["SELECT * FROM bug WHERE id = 1", "BEGIN"]
    );
    assert!(actions.iter().all(|a| a.category() == "SQL-main"));
    assert_eq!(actions[0].duration(), Some(Duration::from_millis(3)));
    assert!(actions[0].start() >= Duration::from_millis(2));
    assert!(actions.iter().all(|a| !a.is_concurrent()));
    // sqlx's event has no error field: never claimed a success.
    assert!(actions.iter().all(|a| a.outcome() == &Outcome::NotReported));
}

#[test]
fn events_with_missing_or_absurd_durations_record_zero_length_actions() {
    let timeline = Timeline::new();
    with_layer(TimelineLayer::new(), || {
        timeline.scope(|| {
            // Older than any duration below: a start never precedes the timeline's.
            std::thread::sleep(Duration::from_millis(3));
            for (n, secs) in [-1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300]
                .into_iter()
                .enumerate()
            {
                tracing::debug!(target: "sqlx::query", summary = "bad", db.statement = format!("SELECT {n} FROM t"), elapsed_secs = secs);
            }
            tracing::debug!(target: "sqlx::query", rows_returned = 0u64, db.statement = "SELECT no_duration FROM t");
            tracing::debug!(target: "sqlx::query", rows_returned = 0u64, db.statement = "SELECT garbage FROM t", elapsed = "fast");
            tracing::debug!(target: "sqlx::query", rows_returned = 0u64, db.statement = "SELECT debug FROM t", elapsed = ?Duration::from_micros(1500));
            tracing::debug!(target: "sqlx::query", rows_returned = 0u64, db.statement = "   ", summary = "COMMIT", elapsed_secs = 0.0);
            tracing::debug!(target: "sqlx::query", rows_returned = 0u64, db.statement = "", summary = "", elapsed_secs = 0.0);
        })
    });
    let actions = timeline.actions();
    assert_eq!(actions.len(), 10);
    for action in &actions {
        let expected = match action.detail() {
            "SELECT debug FROM t" => Duration::from_micros(1500),
            _ => Duration::ZERO,
        };
        assert_eq!(action.duration(), Some(expected), "{}", action.detail());
    }
    let details = details(&timeline);
    assert!(details.contains(&"COMMIT".to_owned()));
    assert!(details.contains(&String::new()));
    assert!(timeline.elapsed() < Duration::from_secs(60));
}

#[test]
fn unselected_events_are_not_recorded() {
    let timeline = Timeline::new();
    with_layer(TimelineLayer::new(), || {
        timeline.scope(|| {
            tracing::debug!(target: "sqlx::pool", elapsed_secs = 0.1, "acquired");
            tracing::info!(db.statement = "SELECT 1", elapsed_secs = 0.1);
            tracing::info_span!("query", db.statement = "SELECT 2").in_scope(|| {});
        })
    });
    assert!(timeline.is_empty());
}

#[test]
fn an_event_on_another_thread_inside_the_request_span_lands_on_the_request() {
    let timeline = Timeline::new();
    let dispatch =
        tracing::Dispatch::new(tracing_subscriber::registry().with(TimelineLayer::new()));
    let on_worker = dispatch.clone();
    let request = async move {
        // What sqlx's SQLite worker does: take the caller's span, enter it
        // on its own thread, emit the event there.
        let span = tracing::Span::current();
        std::thread::spawn(move || {
            assert!(timeline_core::current().is_none());
            tracing::dispatcher::with_default(&on_worker, || {
                span.in_scope(|| {
                    sqlx_event("SELECT * FROM bug WHERE id = 7", Duration::from_millis(1))
                })
            });
        })
        .join()
        .unwrap();
    };
    block_on(
        request
            .with_timeline(timeline.clone())
            .with_subscriber(dispatch),
    );
    assert_eq!(details(&timeline), ["SELECT * FROM bug WHERE id = 7"]);
}

#[test]
fn an_event_inside_a_recorded_span_is_part_of_its_action() {
    let timeline = Timeline::new();
    with_layer(TimelineLayer::new(), || {
        timeline.scope(|| {
            // sea-orm's span around the sqlx event of the same statement.
            let span = tracing::info_span!(
                target: "sea_orm::database::db_connection",
                "sea_orm.query_all",
                otel.kind = "client",
                db.system = "sqlite",
                db.operation = "SELECT",
                db.statement = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
                exception.message = tracing::field::Empty,
            );
            span.record("db.statement", "SELECT * FROM bug WHERE id = 1");
            span.in_scope(|| sqlx_event("SELECT * FROM bug WHERE id = 1", Duration::ZERO));
            span.record("otel.status_code", "ERROR");
            span.record("exception.message", "no such table: bug");
        })
    });
    let actions = timeline.actions();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].detail(), "SELECT * FROM bug WHERE id = 1");
    assert_eq!(
        actions[0].outcome(),
        &Outcome::Error("no such table: bug".to_owned())
    );
}

#[test]
fn an_error_field_sets_an_event_actions_outcome() {
    let rule = Rule::events()
        .target("my_app::cache")
        .category("memcache-get")
        .detail_field("key")
        .duration_field("elapsed")
        .error("{error}");
    let timeline = Timeline::new();
    with_layer(TimelineLayer::empty().rule(rule), || {
        timeline.scope(|| {
            std::thread::sleep(Duration::from_millis(3));
            tracing::info!(target: "my_app::cache", key = "user:1", elapsed = "250µs");
            tracing::warn!(target: "my_app::cache", key = "user:2", elapsed = "1ms", error = "timed out");
        })
    });
    let actions = timeline.actions();
    let action = |key| actions.iter().find(|a| a.detail() == key).unwrap();
    assert_eq!(action("user:1").outcome(), &Outcome::Ok);
    assert_eq!(
        action("user:1").duration(),
        Some(Duration::from_micros(250))
    );
    assert_eq!(
        action("user:2").outcome(),
        &Outcome::Error("timed out".to_owned())
    );
}

// --- filters ------------------------------------------------------------------

#[test]
fn a_per_layer_env_filter_on_fmt_does_not_starve_the_timeline() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_filter(EnvFilter::new("info")),
        )
        .with(TimelineLayer::new());
    let timeline = Timeline::new();
    tracing::subscriber::with_default(subscriber, || {
        timeline.scope(|| {
            tracing::info!("handling the request");
            sqlx_event("SELECT * FROM bug WHERE id = 1", Duration::from_millis(1));
            tracing::debug!("not for the log");
        })
    });
    assert_eq!(details(&timeline), ["SELECT * FROM bug WHERE id = 1"]);
    let log = buffer.text();
    assert!(log.contains("handling the request"), "{log}");
    assert!(!log.contains("SELECT"), "{log}");
    assert!(!log.contains("not for the log"), "{log}");
    assert!(!log.contains("timeline"), "{log}");
}

#[test]
fn a_global_env_filter_hides_sqlx_debug_events_from_every_layer_as_documented() {
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new("info"))
        .with(tracing_subscriber::fmt::layer().with_writer(io::sink))
        .with(TimelineLayer::new());
    let timeline = Timeline::new();
    tracing::subscriber::with_default(subscriber, || {
        timeline.scope(|| sqlx_event("SELECT * FROM bug WHERE id = 1", Duration::ZERO))
    });
    assert!(timeline.is_empty());
}

#[test]
fn the_presets_select_what_their_crates_emit() {
    let timeline = Timeline::new();
    with_layer(TimelineLayer::new(), || {
        timeline.scope(|| {
            // reqwest-tracing 0.7.1, DefaultSpanBackend: a 503, a 404, and
            // a request dropped before its response (no status recorded).
            for status in [Some(503), Some(404), None] {
                let span = tracing::info_span!(
                    target: "reqwest_tracing::reqwest_otel_span_builder",
                    "HTTP request",
                    http.request.method = "GET",
                    url.scheme = "http",
                    server.address = "127.0.0.1",
                    server.port = 8080,
                    otel.kind = "client",
                    otel.status_code = tracing::field::Empty,
                    http.response.status_code = tracing::field::Empty,
                    error.message = tracing::field::Empty,
                );
                span.in_scope(|| {});
                if let Some(status) = status {
                    // As `default_on_request_success` records them.
                    span.record("otel.status_code", "ERROR");
                    span.record("http.response.status_code", status);
                }
                drop(span);
            }
            // tower-http 0.6 DefaultMakeSpan: a client's request, then a
            // server's (origin-form URI: not an external call).
            tracing::debug_span!(target: "tower_http::trace::make_span", "request", method = %"POST", uri = %"http://api.example/x", version = ?"HTTP/1.1").in_scope(|| {});
            tracing::debug_span!(target: "tower_http::trace::make_span", "request", method = %"GET", uri = %"/bugs/1", version = ?"HTTP/1.1").in_scope(|| {});
            // aws-sdk-sts 1.124.0:
            tracing::debug_span!(target: "aws_sdk_sts::operation::get_caller_identity", "STS.GetCallerIdentity", "rpc.service" = "STS", "rpc.method" = "GetCallerIdentity", "rpc.system" = "aws-api").in_scope(|| {});
        })
    });
    let actions: Vec<(String, String, Outcome)> = timeline
        .actions()
        .iter()
        .map(|a| {
            (
                a.category().to_owned(),
                a.detail().to_owned(),
                a.outcome().clone(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            (
                "HTTP-GET".to_owned(),
                "http://127.0.0.1:8080".to_owned(),
                Outcome::Error("HTTP 503".to_owned())
            ),
            (
                "HTTP-GET".to_owned(),
                "http://127.0.0.1:8080".to_owned(),
                Outcome::Ok
            ),
            (
                "HTTP-GET".to_owned(),
                "http://127.0.0.1:8080".to_owned(),
                Outcome::NotReported
            ),
            // tower-http and the AWS SDK report failures in events only.
            (
                "HTTP-POST".to_owned(),
                "http://api.example/x".to_owned(),
                Outcome::NotReported
            ),
            (
                "AWS-STS".to_owned(),
                "GetCallerIdentity".to_owned(),
                Outcome::NotReported
            ),
        ]
    );
    assert_eq!(presets::all().len(), 5);
}

#[test]
fn a_span_is_recorded_by_the_request_it_is_first_entered_in() {
    let timeline = Timeline::new();
    with_layer(TimelineLayer::empty().rule(sql_spans()), || {
        let before =
            tracing::info_span!(target: "sqlx::query", "query", db.statement = "SELECT early");
        before.in_scope(|| {});
        let created_outside =
            tracing::info_span!(target: "sqlx::query", "query", db.statement = "SELECT late");
        timeline.scope(|| {
            before.in_scope(|| {}); // first entered outside: not this request's
            created_outside.in_scope(|| {});
        });
    });
    assert_eq!(details(&timeline), ["SELECT late"]);
}

#[test]
fn a_span_created_on_another_thread_inside_the_request_span_lands_on_the_request() {
    let timeline = Timeline::new();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry().with(TimelineLayer::empty().rule(sql_spans())),
    );
    let on_worker = dispatch.clone();
    let request = async move {
        let request_span = tracing::Span::current();
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&on_worker, || {
                // Created and entered where no timeline is current: found
                // through the parent chain when the span is created.
                let query = request_span.in_scope(|| {
                    tracing::info_span!(target: "sqlx::query", "query", db.statement = "SELECT 3")
                });
                query.in_scope(|| {});
            });
        })
        .join()
        .unwrap();
    };
    block_on(
        request
            .with_timeline(timeline.clone())
            .with_subscriber(dispatch),
    );
    assert_eq!(details(&timeline), ["SELECT 3"]);
}

#[test]
fn a_field_whose_debug_panics_neither_unwinds_into_the_program_nor_loses_the_action() {
    struct PanicsOnDebug;
    impl std::fmt::Debug for PanicsOnDebug {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("Debug of a field panicked");
        }
    }
    let timeline = Timeline::new();
    with_layer(TimelineLayer::new(), || {
        timeline.scope(|| {
            tracing::debug!(
                target: "sqlx::query",
                summary = "SELECT 1",
                elapsed_secs = 0.001,
                db.statement = ?PanicsOnDebug,
            );
        })
    });
    let actions = timeline.actions();
    assert_eq!(actions.len(), 1, "the event was still recorded");
    assert_eq!(actions[0].detail(), "SELECT 1");
}
