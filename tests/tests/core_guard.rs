//! Guards finish their action on drop, `finish()` and panic; they are `Send`;
//! a leaked guard never makes the library panic.

use std::panic::{self, AssertUnwindSafe};
use std::thread;
use std::time::Duration;

use timeline_core::{ActionGuard, Outcome, Timeline};
use timeline_tests::checks::{assert_send_type, log_categories};

#[test]
fn action_guard_is_send_and_timeline_is_send_and_sync() {
    assert_send_type::<ActionGuard>();
    fn assert_sync<T: Send + Sync>() {}
    assert_sync::<Timeline>();
}

#[test]
fn dropping_the_guard_finishes_the_action() {
    let timeline = Timeline::new();
    {
        let _guard = timeline.start("SQL-main", "SELECT 1").unwrap();
        assert_eq!(timeline.actions()[0].duration(), None);
    }
    let action = &timeline.actions()[0];
    assert!(action.duration().is_some());
    assert_eq!(action.outcome(), &Outcome::Ok);
}

#[test]
fn finish_returns_the_stored_duration() {
    let timeline = Timeline::new();
    let guard = timeline.start("sleep", "3ms").unwrap();
    thread::sleep(Duration::from_millis(3));
    let duration = guard.finish();
    assert!(duration >= Duration::from_millis(3));
    assert_eq!(timeline.actions()[0].duration(), Some(duration));
}

#[test]
fn question_mark_finishes_the_action() {
    fn failing(timeline: &Timeline) -> Result<(), std::num::ParseIntError> {
        let _guard = timeline.start("parse", "not a number").unwrap();
        "x".parse::<i32>()?;
        unreachable!()
    }
    let timeline = Timeline::new();
    assert!(failing(&timeline).is_err());
    assert!(timeline.actions()[0].duration().is_some());
    assert!(timeline.start("next", "").is_ok(), "nothing stays open");
}

#[test]
fn a_panic_finishes_the_action_as_panicked() {
    let timeline = Timeline::new();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let _guard = timeline.start("SQL-main", "SELECT boom").unwrap();
        panic!("handler failed");
    }));
    assert!(result.is_err());
    let action = &timeline.actions()[0];
    assert_eq!(action.outcome(), &Outcome::Panicked);
    assert!(action.duration().is_some());
    assert!(timeline.start("SQL-main", "SELECT 2").is_ok());
}

#[test]
fn finish_with_sets_the_outcome() {
    let timeline = Timeline::new();
    let guard = timeline.start("SMTP-send", "to: a@example.com").unwrap();
    guard.finish_with(Outcome::Error("550 no such user".into()));
    assert_eq!(
        timeline.actions()[0].outcome(),
        &Outcome::Error("550 no such user".into())
    );
}

#[test]
fn a_guard_may_be_dropped_on_another_thread() {
    let timeline = Timeline::new();
    let guard = timeline.start("HTTP-get", "/api").unwrap();
    let handle = thread::spawn(move || {
        thread::sleep(Duration::from_millis(2));
        guard.finish()
    });
    let duration = handle.join().unwrap();
    assert_eq!(timeline.actions()[0].duration(), Some(duration));
    assert!(timeline.start("SQL-main", "SELECT 1").is_ok());
}

#[test]
fn a_leaked_guard_blocks_later_starts_and_reports_as_unfinished_without_panicking() {
    let timeline = Timeline::new();
    std::mem::forget(timeline.start("SQL-main", "SELECT leaked").unwrap());
    let error = timeline.start("SQL-main", "SELECT 2").unwrap_err();
    assert_eq!(error.open_detail(), "SELECT leaked");
    let actions = timeline.actions();
    assert_eq!(actions[0].duration(), None);
    let tuples = timeline.log_tuples();
    assert!(tuples[0].end_ms >= tuples[0].start_ms);
    timeline.record(
        "SQL-main",
        "recorded",
        std::time::Instant::now(),
        Duration::ZERO,
    );
    assert_eq!(timeline.len(), 2);
}

#[test]
fn a_leaked_nesting_guard_blocks_nothing() {
    let timeline = Timeline::new();
    std::mem::forget(timeline.start_nested("txn", "BEGIN").unwrap());
    timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    let categories = log_categories(&timeline);
    assert_eq!(categories, ["txn-start", "SQL-main"]);
}

#[test]
fn guards_outliving_every_timeline_handle_still_finish() {
    let guard = Timeline::new().start("SQL-main", "SELECT 1").unwrap();
    let timeline = guard.timeline().clone();
    drop(guard);
    assert!(timeline.actions()[0].duration().is_some());
}

#[test]
fn nested_guard_dropped_before_its_child_leaves_the_child_open() {
    let timeline = Timeline::new();
    let outer = timeline.start_nested("txn", "BEGIN").unwrap();
    let child = timeline.start("SQL-main", "INSERT").unwrap();
    outer.finish();
    assert!(
        timeline.start("SQL-main", "next").is_err(),
        "the child still blocks"
    );
    child.finish();
    assert!(timeline.start("SQL-main", "next").is_ok());
}

#[test]
fn a_guard_s_debug_says_whether_its_action_was_stored() {
    let timeline = Timeline::builder().max_actions(1).build();
    let stored = timeline.start("SQL-main", "SELECT 1").unwrap();
    let shown = format!("{stored:?}");
    assert!(shown.starts_with("ActionGuard {"), "{shown}");
    assert!(shown.contains("sequential: true, stored: true"), "{shown}");
    stored.finish();
    let not_stored = timeline.start_nested("SQL-main", "BEGIN").unwrap();
    let shown = format!("{not_stored:?}");
    assert!(
        shown.contains("sequential: false, stored: false"),
        "{shown}"
    );
}
