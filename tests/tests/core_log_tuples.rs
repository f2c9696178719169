//! `actions()` and the flat OOPS form of `log_tuples()`.

use std::thread::sleep;
use std::time::{Duration, Instant};

use timeline_core::Timeline;
use timeline_tests::checks::{details, log_categories};

#[test]
fn nesting_action_appears_once_in_actions_with_its_full_duration() {
    let timeline = Timeline::new();
    let outer = timeline.start_nested("txn", "transaction").unwrap();
    let child = timeline.start("SQL-main", "INSERT 1").unwrap();
    sleep(Duration::from_millis(2));
    let child_duration = child.finish();
    let outer_duration = outer.finish();

    let actions = timeline.actions();
    assert_eq!(actions.len(), 2);
    assert!(actions[0].is_nested());
    assert_eq!(actions[0].category(), "txn");
    assert_eq!(actions[0].duration(), Some(outer_duration));
    assert!(outer_duration >= child_duration);
    assert!(actions[1].start() >= actions[0].start());
    assert!(actions[1].end() <= actions[0].end());
}

#[test]
fn log_tuples_mark_nesting_actions_with_start_and_stop_around_children() {
    let timeline = Timeline::new();
    let outer = timeline.start_nested("txn", "transaction").unwrap();
    let inner = timeline.start_nested("savepoint", "sp1").unwrap();
    timeline.start("SQL-main", "INSERT 1").unwrap().finish();
    inner.finish();
    timeline.start("SQL-main", "INSERT 2").unwrap().finish();
    outer.finish();
    timeline.start("SQL-main", "SELECT after").unwrap().finish();

    let tuples = timeline.log_tuples();
    assert_eq!(
        log_categories(&timeline),
        [
            "txn-start",
            "savepoint-start",
            "SQL-main",
            "savepoint-stop",
            "SQL-main",
            "txn-stop",
            "SQL-main"
        ]
    );
    for marker in tuples
        .iter()
        .filter(|t| t.category.ends_with("-start") || t.category.ends_with("-stop"))
    {
        assert_eq!(marker.start_ms, marker.end_ms, "markers have no length");
    }
    assert_eq!(tuples[0].detail, "transaction");
    assert_eq!(tuples[5].detail, "transaction");
}

#[test]
fn unfinished_nesting_action_has_no_stop_marker() {
    let timeline = Timeline::new();
    let _outer = timeline.start_nested("txn", "transaction").unwrap();
    timeline.start("SQL-main", "INSERT 1").unwrap().finish();
    assert_eq!(log_categories(&timeline), ["txn-start", "SQL-main"]);
}

#[test]
fn log_tuple_milliseconds_are_floored_and_end_is_start_plus_duration() {
    let timeline = Timeline::new();
    let at = Instant::now() + Duration::from_micros(5_900);
    timeline.record("SQL-main", "SELECT 1", at, Duration::from_micros(2_999));
    let tuple = &timeline.log_tuples()[0];
    assert_eq!(tuple.start_ms, 5);
    assert_eq!(tuple.end_ms, 7);
    assert_eq!(timeline.actions()[0].log_tuple(), *tuple);
}

#[test]
fn unfinished_action_ends_now_in_its_log_tuple() {
    let timeline = Timeline::new();
    let _in_flight = timeline.start("SQL-main", "SELECT pg_sleep(1)").unwrap();
    sleep(Duration::from_millis(20));
    let tuple = &timeline.log_tuples()[0];
    assert!(tuple.end_ms - tuple.start_ms >= 20, "{tuple:?}");
    let action = &timeline.actions()[0];
    assert_eq!(action.duration(), None);
    assert!(action.log_tuple().end_ms >= 20);
}

#[test]
fn record_clamps_a_start_before_the_baseline_to_zero() {
    let before = Instant::now();
    sleep(Duration::from_millis(5));
    let timeline = Timeline::new();
    timeline.record("SQL-main", "early", before, Duration::from_millis(1));
    let action = &timeline.actions()[0];
    assert_eq!(action.start(), Duration::ZERO);
    assert_eq!(action.duration(), Some(Duration::from_millis(1)));
}

#[test]
fn actions_are_in_start_order_even_when_recorded_late() {
    let timeline = Timeline::new();
    let earlier = Instant::now();
    sleep(Duration::from_millis(2));
    timeline.start("SQL-main", "second").unwrap().finish();
    timeline.record("SQL-main", "first", earlier, Duration::from_micros(10));
    let details = details(&timeline);
    assert_eq!(details, ["first", "second"]);
    let tuples = timeline.log_tuples();
    assert_eq!(tuples[0].detail, "first");
}

#[test]
fn backtraces_are_captured_only_when_enabled_and_end_up_in_log_tuples() {
    let plain = Timeline::new();
    plain.start("SQL-main", "SELECT 1").unwrap().finish();
    assert!(plain.actions()[0].backtrace().is_none());
    assert!(plain.log_tuples()[0].backtrace.is_none());

    let traced = Timeline::builder().capture_backtraces(true).build();
    traced.start("SQL-main", "SELECT 1").unwrap().finish();
    let backtrace = traced.log_tuples()[0].backtrace.clone().expect("captured");
    assert!(!backtrace.is_empty());
    assert_eq!(traced.actions()[0].backtrace(), Some(backtrace.as_str()));
}

#[test]
fn at_equal_times_a_stop_marker_follows_its_start_and_what_ran_inside() {
    use std::time::SystemTime;
    use timeline_core::__hooks::{fixed_timeline, push_fixed};
    use timeline_core::Outcome;

    let ms = Duration::from_millis;
    let timeline = fixed_timeline(SystemTime::UNIX_EPOCH, ms(100));
    for (detail, start, took, nested) in [
        // A nesting action that took no time at all, with nothing inside.
        ("SAVEPOINT a", 5, 0, true),
        // One that ended when the next action started.
        ("SAVEPOINT b", 10, 0, true),
        ("SELECT 1", 10, 5, false),
    ] {
        push_fixed(
            &timeline,
            "SQL",
            detail,
            ms(start),
            Some(ms(took)),
            nested,
            Outcome::Ok,
        );
    }
    assert_eq!(
        log_categories(&timeline),
        ["SQL-start", "SQL-stop", "SQL-start", "SQL-stop", "SQL"]
    );
}
