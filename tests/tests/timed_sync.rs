//! `#[timed]` on synchronous free functions: categories and details,
//! nesting, panics, early returns, other attributes, and what happens
//! without a current timeline.

use std::fmt::{Debug, Display};
use std::num::ParseIntError;
use std::panic::{self, AssertUnwindSafe, Location};
use std::time::Duration;

use timeline_core::{Outcome, Timeline, current, timed};
use timeline_tests::checks::{Counted, details};

#[timed]
fn default_category() {}

#[test]
fn category_defaults_to_the_function_name_and_detail_to_empty() {
    let timeline = Timeline::new();
    timeline.scope(default_category);
    let actions = timeline.actions();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].category(), "default_category");
    assert_eq!(actions[0].detail(), "");
    assert_eq!(actions[0].outcome(), &Outcome::Ok);
    assert!(actions[0].duration().is_some());
    assert!(!actions[0].is_nested());
}

#[timed]
fn r#match() -> u8 {
    7
}

#[test]
fn default_category_of_a_raw_identifier_has_no_prefix() {
    let timeline = Timeline::new();
    assert_eq!(timeline.scope(r#match), 7);
    assert_eq!(timeline.actions()[0].category(), "match");
}

#[timed(
    category = "SQL-main",
    detail = "SELECT * FROM bug WHERE id = {id} AND title = {title:?}"
)]
fn load_bug(id: i64, title: &str) -> String {
    format!("bug {id}: {title}")
}

#[test]
fn detail_formats_the_named_parameters() {
    let timeline = Timeline::new();
    let bug = timeline.scope(|| load_bug(7, "crash"));
    assert_eq!(bug, "bug 7: crash");
    let action = &timeline.actions()[0];
    assert_eq!(action.category(), "SQL-main");
    assert_eq!(
        action.detail(),
        r#"SELECT * FROM bug WHERE id = 7 AND title = "crash""#
    );
}

#[timed(detail = "{{literal}} braces around {n:>3}")]
fn escaped_and_formatted(n: u32) -> u32 {
    n
}

#[timed(detail = "only {{escaped}} braces, }}{{")]
fn escaped_only() {}

#[test]
fn escaped_braces_are_literal_braces() {
    let timeline = Timeline::new();
    timeline.scope(|| {
        escaped_and_formatted(5);
        escaped_only();
    });
    let details = details(&timeline);
    assert_eq!(
        details,
        ["{literal} braces around   5", "only {escaped} braces, }{"]
    );
}

#[timed(detail = "{value}")]
fn show(value: &Counted) -> u32 {
    42
}

#[test]
fn without_a_current_timeline_the_body_runs_and_the_detail_is_not_formatted() {
    let counted = Counted::default();
    let unrelated = Timeline::new();
    assert!(current().is_none());
    assert_eq!(show(&counted), 42);
    assert_eq!(counted.formatted.get(), 0, "Display ran without a timeline");
    assert!(unrelated.is_empty());

    unrelated.scope(|| show(&counted));
    assert_eq!(counted.formatted.get(), 1);
    assert_eq!(unrelated.actions()[0].detail(), "value");
}

#[timed(category = "panics")]
fn explode() {
    panic!("boom");
}

#[test]
fn a_panic_finishes_the_action_as_panicked() {
    let timeline = Timeline::new();
    let caught = panic::catch_unwind(AssertUnwindSafe(|| timeline.scope(explode)));
    assert!(caught.is_err());
    let action = &timeline.actions()[0];
    assert_eq!(action.outcome(), &Outcome::Panicked);
    assert!(action.duration().is_some());
    // Finished: the next action may start.
    assert!(timeline.start("after", "").is_ok());
}

#[timed]
fn double(text: &str) -> Result<i32, ParseIntError> {
    if text.is_empty() {
        return Ok(0);
    }
    let n: i32 = text.parse()?;
    Ok(n * 2)
}

#[test]
fn early_return_and_question_mark_work_and_finish_the_action() {
    let timeline = Timeline::new();
    timeline.scope(|| {
        assert_eq!(double(""), Ok(0));
        assert!(double("x").is_err());
        assert_eq!(double("21"), Ok(42));
    });
    let actions = timeline.actions();
    assert_eq!(actions.len(), 3);
    for action in &actions {
        assert!(action.duration().is_some());
        // Without `err`, an `Err` return is not an error of the action.
        assert_eq!(action.outcome(), &Outcome::Ok);
    }
}

#[timed(category = "sleep")]
fn sleep_a_little() {
    std::thread::sleep(Duration::from_millis(5));
}

#[test]
fn the_action_lasts_as_long_as_the_body() {
    let timeline = Timeline::new();
    timeline.scope(sleep_a_little);
    assert!(timeline.actions()[0].duration().unwrap() >= Duration::from_millis(5));
}

#[timed(category = "SQL-transaction", nested)]
fn transaction() {
    insert(1);
    insert(2);
}

#[timed(category = "SQL-main", detail = "INSERT {n}")]
fn insert(n: u32) {}

#[test]
fn nested_actions_may_contain_others() {
    let timeline = Timeline::new();
    timeline.scope(transaction);
    assert!(timeline.violations().is_empty());
    let actions = timeline.actions();
    assert_eq!(actions.len(), 3);
    assert!(actions[0].is_nested());
    assert_eq!(actions[1].detail(), "INSERT 1");
    assert!(!actions[1].is_nested());
    let categories: Vec<String> = timeline
        .log_tuples()
        .into_iter()
        .map(|tuple| tuple.category)
        .collect();
    assert_eq!(
        categories,
        [
            "SQL-transaction-start",
            "SQL-main",
            "SQL-main",
            "SQL-transaction-stop"
        ]
    );
}

#[timed(detail = "{item} ({item:?})")]
fn describe<T>(item: &T) -> String
where
    T: Display + Debug + ?Sized,
{
    item.to_string()
}

#[timed(category = "evens")]
fn evens(limit: u32) -> impl Iterator<Item = u32> {
    (0..limit).filter(|n| n % 2 == 0)
}

#[timed(detail = "{label}")]
fn total(label: &str, items: impl IntoIterator<Item = u32>) -> u32 {
    items.into_iter().sum()
}

#[test]
fn generic_functions_and_impl_trait_work() {
    let timeline = Timeline::new();
    timeline.scope(|| {
        assert_eq!(describe("bug"), "bug");
        assert_eq!(evens(7).collect::<Vec<_>>(), [0, 2, 4, 6]);
        assert_eq!(total("sum", [1, 2, 3]), 6);
    });
    let actions = timeline.actions();
    assert_eq!(actions[0].detail(), r#"bug ("bug")"#);
    assert_eq!(actions[1].category(), "evens");
    assert_eq!(actions[2].detail(), "sum");
}

struct Point {
    label: &'static str,
    weight: u8,
}

#[timed(detail = "{x},{y} {label} {first}")]
fn at((x, y): (i32, i32), Point { label, .. }: Point, [first, _]: [u8; 2], _: bool) -> i32 {
    x + y + i32::from(first)
}

#[test]
fn detail_may_name_the_bindings_of_parameter_patterns() {
    let timeline = Timeline::new();
    let point = Point {
        label: "home",
        weight: 1,
    };
    assert_eq!(point.weight, 1);
    let sum = timeline.scope(|| at((1, 2), point, [3, 4], true));
    assert_eq!(sum, 6);
    assert_eq!(timeline.actions()[0].detail(), "1,2 home 3");
}

/// A documented function: the doc comment and the other attributes stay.
#[timed(category = "caller")]
#[track_caller]
#[inline]
#[must_use = "the line is the point"]
#[allow(unused_variables)]
fn called_from(unused: u8) -> u32 {
    Location::caller().line()
}

#[test]
fn other_attributes_stay_in_effect() {
    let timeline = Timeline::new();
    // `#[track_caller]` still applies to the function as written.
    let (line, expected) = (timeline.scope(|| called_from(0)), line!());
    assert_eq!(line, expected);
    assert_eq!(timeline.actions()[0].category(), "caller");
}

mod repository {
    use timeline_core::timed;

    #[timed(category = "SQL-main", detail = "SELECT 1")]
    pub(crate) fn select_one() -> i32 {
        1
    }
}

#[test]
fn visibility_is_kept() {
    let timeline = Timeline::new();
    assert_eq!(timeline.scope(repository::select_one), 1);
    assert_eq!(timeline.actions()[0].detail(), "SELECT 1");
}

#[timed]
fn countdown(n: u32) -> u32 {
    if n == 0 { 0 } else { 1 + countdown(n - 1) }
}

#[test]
fn a_recursive_call_overlaps_its_caller_and_is_stored_as_concurrent() {
    let timeline = Timeline::new();
    assert_eq!(timeline.scope(|| countdown(2)), 2);
    let concurrent: Vec<bool> = timeline
        .actions()
        .iter()
        .map(|a| a.is_concurrent())
        .collect();
    assert_eq!(concurrent, [false, true, true]);
    assert_eq!(timeline.violations().len(), 2);
}

#[timed]
fn never_returns() -> ! {
    panic!("diverges");
}

#[test]
fn a_diverging_function_is_timed() {
    let timeline = Timeline::new();
    assert!(panic::catch_unwind(AssertUnwindSafe(|| timeline.scope(|| never_returns()))).is_err());
    assert_eq!(timeline.actions()[0].outcome(), &Outcome::Panicked);
}

#[timed(category = "inner-attributes")]
fn with_inner_attributes() -> u32 {
    #![allow(unused_variables)]
    // Without the inner attribute kept first in the body, the unused
    // variable would fail `clippy -D warnings` on this file.
    let unused = 1;
    2
}

#[test]
fn inner_attributes_of_the_body_stay_in_effect() {
    let timeline = Timeline::new();
    assert_eq!(timeline.scope(with_inner_attributes), 2);
    assert_eq!(timeline.actions()[0].category(), "inner-attributes");
}
