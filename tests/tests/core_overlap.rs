//! The overlap rule, including the six nesting cases of Python `timeline`
//! 0.0.7's test suite.

use std::thread;

use timeline_core::Timeline;

#[test]
fn start_is_refused_while_an_action_is_unfinished() {
    let timeline = Timeline::new();
    let first = timeline.start("SQL-main", "SELECT 1").unwrap();
    let error = timeline.start("SQL-main", "SELECT 2").unwrap_err();
    assert_eq!(error.open_detail(), "SELECT 1");
    assert_eq!(error.attempted_detail(), "SELECT 2");
    assert!(timeline.start_nested("txn", "BEGIN").is_err());
    drop(first);
    timeline.start("SQL-main", "SELECT 2").unwrap().finish();
    assert_eq!(timeline.len(), 2, "a refused start stores nothing");
}

#[test]
fn overlap_error_names_both_actions() {
    let timeline = Timeline::new();
    let _open = timeline.start("SQL-main", "SELECT 1").unwrap();
    let message = timeline
        .start("memcache-get", "key:7")
        .unwrap_err()
        .to_string();
    for part in ["SQL-main", "SELECT 1", "memcache-get", "key:7"] {
        assert!(message.contains(part), "{message:?} lacks {part:?}");
    }
}

#[test]
fn an_action_started_on_another_thread_blocks_this_one() {
    let timeline = Timeline::new();
    let guard = {
        let timeline = timeline.clone();
        thread::spawn(move || timeline.start("HTTP-get", "/slow").unwrap())
            .join()
            .unwrap()
    };
    assert!(timeline.start("SQL-main", "SELECT 1").is_err());
    drop(guard);
    assert!(timeline.start("SQL-main", "SELECT 1").is_ok());
}

#[test]
fn record_is_never_refused() {
    let timeline = Timeline::new();
    let _open = timeline.start("SQL-main", "SELECT 1").unwrap();
    timeline.record(
        "SQL-main",
        "profiled",
        std::time::Instant::now(),
        Default::default(),
    );
    assert_eq!(timeline.len(), 2);
}

// The six cases of Python timeline 0.0.7 (timeline/tests/test_timeline.py).

#[test]
fn test_nested_start_permitted() {
    let timeline = Timeline::new();
    let _outer = timeline.start_nested("foo", "bar").unwrap();
    timeline.start("baz", "qux").unwrap().finish();
}

#[test]
fn test_nested_start_is_not_transitive() {
    let timeline = Timeline::new();
    let _outer = timeline.start_nested("foo", "bar").unwrap();
    let _child = timeline.start("baz", "qux").unwrap();
    assert!(timeline.start("baz", "qux").is_err());
}

#[test]
fn test_multiple_nested_children_permitted() {
    let timeline = Timeline::new();
    let _outer = timeline.start_nested("foo", "bar").unwrap();
    timeline.start("baz", "qux").unwrap().finish();
    timeline.start("baz", "qux").unwrap().finish();
}

#[test]
fn test_multiple_starts_after_nested_group_prevented() {
    let timeline = Timeline::new();
    timeline.start_nested("foo", "bar").unwrap().finish();
    let _first = timeline.start("baz", "qux").unwrap();
    assert!(timeline.start("baz", "qux").is_err());
}

#[test]
fn test_nesting_within_nesting_permitted() {
    let timeline = Timeline::new();
    let _outer = timeline.start_nested("foo", "bar").unwrap();
    let _inner = timeline.start_nested("baz", "qux").unwrap();
    timeline.start("baz", "qux").unwrap().finish();
}

#[test]
fn test_finishing_nested_within_nested_leaves_outer_nested_nesting() {
    let timeline = Timeline::new();
    let _outer = timeline.start_nested("foo", "bar").unwrap();
    timeline.start_nested("baz", "qux").unwrap().finish();
    timeline.start("baz", "qux").unwrap().finish();
    timeline.start("baz", "qux").unwrap().finish();
}
