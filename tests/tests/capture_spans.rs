//! Issue #20, deliverable 2, with plain `tracing` spans: a span that a
//! driver's worker keeps alive after the work is done neither stretches its
//! action nor makes the next one concurrent, and a driver's own elapsed
//! time is the action's duration.
//!
//! The spans are sea-orm 2.0's (`timeline_tests::sea_orm_shape`, made and
//! recorded as sea-orm's `with_db_span!` does); the worker is a thread that
//! holds a clone of the span, as sqlx-sqlite 0.9.1's worker holds the
//! caller's span until after it has sent the rows.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use timeline_core::integrations::tracing::{Rule, TimelineLayer};
use timeline_core::{Outcome, Timeline};
use timeline_tests::future::block_on;
use timeline_tests::sea_orm_shape::{DbSpan, with_db_span};
use tracing_subscriber::prelude::*;

/// How long the worker keeps its clone after the caller has the result.
const HELD: Duration = Duration::from_millis(5);

/// What the worker of one statement did.
struct Worker {
    thread: thread::JoinHandle<Duration>,
    /// How long the driver worked, as it measured it.
    elapsed: Duration,
    /// When the caller had the result and sea-orm had recorded it, from
    /// the timeline's start.
    returned_at: Duration,
}

impl Worker {
    /// When the worker dropped its clone of the span, from the timeline's
    /// start: after `returned_at`, once the worker is done.
    fn dropped_at(self) -> Duration {
        self.thread.join().unwrap()
    }
}

/// A statement through a sea-orm span whose driver call hands a clone of
/// the span to a worker thread, as sqlx's SQLite worker gets the caller's
/// span: the worker works 1 ms inside the span, sends the result, emits
/// sqlx's query event with the time it measured (if `event`), and drops
/// its clone `HELD` after the caller went on.
fn statement(sql: &'static str, event: bool) -> Worker {
    let timeline = timeline_core::current().unwrap();
    let (went_on, go_on) = mpsc::channel::<()>();
    let (thread, elapsed) = block_on(with_db_span(DbSpan::QueryAll, "sqlite", sql, async {
        let span = tracing::Span::current();
        let timeline = timeline.clone();
        // sqlx's worker emits through the global subscriber; the tests
        // here set theirs per thread.
        let dispatch = tracing::dispatcher::get_default(tracing::Dispatch::clone);
        let (sent, result) = mpsc::channel();
        let thread = thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                let in_span = span.enter();
                let began = Instant::now();
                thread::sleep(Duration::from_millis(1));
                let elapsed = began.elapsed();
                sent.send(elapsed).unwrap();
                if event {
                    // sqlx's `QueryLogger`, dropped after the rows went out.
                    tracing::debug!(
                        target: "sqlx::query",
                        summary = sql,
                        db.statement = "",
                        rows_affected = 0,
                        rows_returned = 1,
                        elapsed_secs = elapsed.as_secs_f64(),
                    );
                }
                drop(in_span);
                let _ = go_on.recv();
                thread::sleep(HELD);
                let dropped_at = timeline.elapsed();
                drop(span);
                dropped_at
            })
        });
        let elapsed = result.recv().unwrap();
        Ok::<_, String>((thread, elapsed))
    }))
    .unwrap();
    let returned_at = timeline.elapsed();
    went_on.send(()).unwrap();
    Worker {
        thread,
        elapsed,
        returned_at,
    }
}

/// A worker's statement, once the worker is done.
struct Done {
    elapsed: Duration,
    returned_at: Duration,
    dropped_at: Duration,
}

fn recorded(run: impl FnOnce()) -> Timeline {
    let subscriber = tracing_subscriber::registry().with(TimelineLayer::new());
    let timeline = Timeline::new();
    tracing::subscriber::with_default(subscriber, || timeline.scope(run));
    timeline
}

/// Runs statements through [`statement`], and waits for every worker to
/// be done with its span (and its event) before the timeline is read.
fn with_workers(statements: &[&'static str], event: bool) -> (Timeline, Vec<Done>) {
    let mut workers = Vec::new();
    let timeline = recorded(|| {
        workers = statements.iter().map(|sql| statement(sql, event)).collect();
    });
    let done = workers
        .into_iter()
        .map(|worker| Done {
            elapsed: worker.elapsed,
            returned_at: worker.returned_at,
            dropped_at: worker.dropped_at(),
        })
        .collect();
    (timeline, done)
}

#[test]
fn a_span_a_worker_keeps_alive_ends_when_its_source_reports_the_result() {
    let (timeline, workers) = with_workers(&["SELECT 1", "SELECT 2", "SELECT 3"], false);
    let actions = timeline.actions();
    let details: Vec<&str> = actions.iter().map(|a| a.detail()).collect();
    assert_eq!(details, ["SELECT 1", "SELECT 2", "SELECT 3"]);
    assert!(
        timeline.violations().is_empty(),
        "{:?}",
        timeline.violations()
    );
    for (action, worker) in actions.iter().zip(workers) {
        assert!(!action.is_concurrent(), "{}", timeline.waterfall(60));
        assert!(worker.returned_at < worker.dropped_at);
        assert!(
            action.end() <= worker.returned_at,
            "stretched past the result, to the clone's drop at {:?}: {}",
            worker.dropped_at,
            timeline.waterfall(60)
        );
        assert_eq!(action.outcome(), &Outcome::Ok);
    }
}

#[test]
fn the_driver_s_elapsed_time_is_the_action_s_duration() {
    // The result reaches the caller before the driver's event; the caller
    // records its status meanwhile, as sea-orm does: either may come first.
    let (timeline, workers) = with_workers(&["SELECT 1", "SELECT 2", "SELECT 3"], true);
    let actions = timeline.actions();
    // One action per statement: sqlx's event is part of sea-orm's.
    assert_eq!(actions.len(), 3, "{}", timeline.waterfall(60));
    assert!(timeline.violations().is_empty());
    for (action, worker) in actions.iter().zip(workers) {
        assert!(!action.is_concurrent());
        let elapsed = worker.elapsed;
        // As the event carries it: an `f64` of seconds.
        let reported = Duration::from_secs_f64(elapsed.as_secs_f64());
        let duration = action.duration().unwrap();
        assert!(
            duration.abs_diff(reported) <= Duration::from_micros(1),
            "{} took {duration:?}, the driver measured {elapsed:?}",
            action.detail()
        );
        assert!(action.end() <= worker.returned_at);
    }
}

#[test]
fn a_driver_event_before_the_result_times_the_action_exactly() {
    // The worker emits its event and leaves the span before the caller has
    // the result (sqlx-postgres emits in the caller's task): the action is
    // exactly the driver's interval, ending at the event.
    let elapsed = Duration::from_micros(1_500);
    let timeline = recorded(|| {
        let result = block_on(with_db_span(
            DbSpan::Execute,
            "sqlite",
            "UPDATE bug SET x = 1",
            async {
                thread::sleep(Duration::from_millis(3));
                tracing::debug!(
                    target: "sqlx::query",
                    summary = "UPDATE bug SET x = 1",
                    db.statement = "",
                    rows_affected = 1,
                    rows_returned = 0,
                    elapsed_secs = elapsed.as_secs_f64(),
                );
                thread::sleep(Duration::from_millis(2));
                Ok::<_, String>(())
            },
        ));
        result.unwrap();
    });
    let actions = timeline.actions();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].duration(), Some(elapsed));
    assert!(actions[0].start() >= Duration::from_millis(3) - elapsed);
    assert_eq!(actions[0].outcome(), &Outcome::Ok);
}

#[test]
fn an_error_recorded_after_the_status_is_the_outcome_with_the_driver_s_text() {
    let timeline = recorded(|| {
        let failed = block_on(with_db_span(
            DbSpan::Execute,
            "sqlite",
            "INSERT INTO person (id) VALUES (1)",
            async { Err::<(), _>("UNIQUE constraint failed: person.id") },
        ));
        assert!(failed.is_err());
    });
    assert_eq!(
        timeline.actions()[0].outcome(),
        &Outcome::Error("UNIQUE constraint failed: person.id".to_owned())
    );
}

#[test]
fn a_sea_orm_span_that_closes_without_a_result_is_not_reported() {
    // sea-orm's `sync` feature runs the statement in the span and records
    // nothing: the source never said.
    let timeline = recorded(|| {
        tracing::info_span!(
            target: "sea_orm::database::db_connection",
            "sea_orm.execute",
            db.operation = "DELETE",
            db.statement = "DELETE FROM bug",
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
        )
        .in_scope(|| {});
    });
    assert_eq!(timeline.actions()[0].outcome(), &Outcome::NotReported);
}

#[test]
fn your_own_spans_still_end_when_they_close_and_succeed_without_an_error() {
    let rule = Rule::spans()
        .target("my_app::cache")
        .category("memcache-get")
        .detail_field("key")
        .error("{error}");
    let subscriber = tracing_subscriber::registry().with(TimelineLayer::empty().rule(rule));
    let timeline = Timeline::new();
    tracing::subscriber::with_default(subscriber, || {
        timeline.scope(|| {
            let span = tracing::info_span!(target: "my_app::cache", "get", key = "user:1", error = tracing::field::Empty);
            span.in_scope(|| thread::sleep(Duration::from_millis(2)));
            thread::sleep(Duration::from_millis(2));
            drop(span);
        })
    });
    let actions = timeline.actions();
    assert_eq!(actions[0].outcome(), &Outcome::Ok);
    assert!(actions[0].duration().unwrap() >= Duration::from_millis(4));
}
