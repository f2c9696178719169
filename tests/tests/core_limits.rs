//! Memory bounds and the detail filter.

use std::time::{Duration, Instant};

use timeline_core::Timeline;
use timeline_tests::checks::details;

#[test]
fn max_actions_stores_that_many_and_counts_the_rest_as_dropped() {
    let timeline = Timeline::builder().max_actions(3).build();
    for i in 0..5 {
        timeline
            .start("SQL-main", format!("SELECT {i}"))
            .unwrap()
            .finish();
    }
    timeline.record("SQL-main", "recorded", Instant::now(), Duration::ZERO);
    assert_eq!(timeline.len(), 3);
    assert_eq!(timeline.dropped(), 3);
    let details = details(&timeline);
    assert_eq!(details, ["SELECT 0", "SELECT 1", "SELECT 2"]);
}

#[test]
fn the_overlap_rule_holds_for_actions_that_are_not_stored() {
    let timeline = Timeline::builder().max_actions(0).build();
    let guard = timeline.start("SQL-main", "SELECT not stored").unwrap();
    let error = timeline.start("SQL-main", "SELECT 2").unwrap_err();
    assert_eq!(error.open_detail(), "SELECT not stored");
    assert!(guard.finish() < Duration::from_secs(60));
    assert!(timeline.start("SQL-main", "SELECT 2").is_ok());
    assert!(timeline.is_empty());
    assert_eq!(timeline.dropped(), 2);
}

#[test]
fn long_details_are_cut_at_a_char_boundary_and_end_in_an_ellipsis() {
    let timeline = Timeline::builder().max_detail_len(16).build();
    let detail = "SELECT 'ééééééééééééé'";
    timeline.start("SQL-main", detail).unwrap().finish();
    let stored = timeline.actions()[0].detail().to_owned();
    assert!(stored.len() <= 16, "{stored:?}");
    assert!(stored.ends_with('…'));
    assert!(detail.starts_with(stored.trim_end_matches('…')));
}

#[test]
fn details_within_the_limit_are_kept_whole() {
    let timeline = Timeline::builder().max_detail_len(8).build();
    timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    assert_eq!(timeline.actions()[0].detail(), "SELECT 1");
}

#[test]
fn huge_details_are_bounded_by_default() {
    let timeline = Timeline::new();
    timeline
        .start("SQL-main", "x".repeat(10_000_000))
        .unwrap()
        .finish();
    assert!(timeline.actions()[0].detail().len() <= 65_536);
}

#[test]
fn the_filter_runs_on_every_detail_before_truncation() {
    let timeline = Timeline::builder()
        .detail_filter(|detail| detail.replace("hunter2", "?"))
        .max_detail_len(26)
        .build();
    timeline
        .start("SQL-main", "SELECT 1 WHERE pw='hunter2'")
        .unwrap()
        .finish();
    timeline.record("SQL-main", "pw=hunter2", Instant::now(), Duration::ZERO);
    let error = {
        let _open = timeline.start("SQL-main", "open").unwrap();
        timeline.start("SQL-main", "pw=hunter2").unwrap_err()
    };
    let details = details(&timeline);
    assert_eq!(details[0], "SELECT 1 WHERE pw='?'");
    assert_eq!(details[1], "pw=?");
    assert_eq!(error.attempted_detail(), "pw=?");
}

#[test]
fn a_panicking_filter_loses_no_action() {
    let timeline = Timeline::builder()
        .detail_filter(|_| panic!("bad filter"))
        .build();
    timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline.actions()[0].category(), "SQL-main");
}

#[test]
fn hostile_details_are_stored_verbatim() {
    let timeline = Timeline::new();
    let hostile = "\0\r\n\"'\\\u{202e}\u{feff}💥";
    timeline.start(hostile, hostile).unwrap().finish();
    assert_eq!(timeline.actions()[0].detail(), hostile);
    assert_eq!(timeline.log_tuples()[0].category, hostile);
}

#[test]
fn violations_are_kept_up_to_max_actions() {
    let timeline = Timeline::builder().max_actions(3).build();
    let _open = timeline.start("HTTP-get", "/api").unwrap();
    for i in 0..5 {
        timeline.record(
            "SQL-main",
            format!("SELECT {i}"),
            Instant::now(),
            Duration::ZERO,
        );
    }
    let violations = timeline.violations();
    assert_eq!(violations.len(), 3, "{violations:?}");
    assert_eq!(violations[2].attempted_detail(), "SELECT 2");
}
