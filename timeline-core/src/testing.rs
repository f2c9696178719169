//! Test assertions on timelines: how many queries a page issues, and
//! whether it issues the same statement over and over (N+1).
//!
//! Like Launchpad's `HasQueryCount` and Django's `assertNumQueries`, a
//! failing assertion lists every matching action — offset, duration,
//! category, detail and, when captured, the backtrace — so the test output
//! alone shows which query to remove.
//!
//! ```
//! use timeline_core::testing;
//!
//! fn render_page() {
//!     let timeline = timeline_core::current().unwrap();
//!     for id in 1..=3 {
//!         timeline.start("SQL-main", format!("SELECT * FROM bug WHERE id = {id}")).unwrap().finish();
//!     }
//! }
//!
//! let ((), timeline) = testing::record(render_page);
//! testing::assert_max_actions(&timeline, "SQL", 5);
//! testing::assert_max_repeats(&timeline, 3);
//! ```
//!
//! ```should_panic
//! # use timeline_core::testing;
//! # fn render_page() {
//! #     let timeline = timeline_core::current().unwrap();
//! #     for id in 1..=3 {
//! #         timeline.start("SQL-main", format!("SELECT * FROM bug WHERE id = {id}")).unwrap().finish();
//! #     }
//! # }
//! let ((), timeline) = testing::record(render_page);
//! // panics: "expected at most 1 action of category SQL…, found 3: …"
//! testing::assert_max_actions(&timeline, "SQL", 1);
//! ```

use std::fmt::Write as _;

use crate::report::normalise::normalise;
use crate::report::time::millis;
use crate::report::{CATEGORY_CHARS, one_line};
use crate::{Action, Timeline, TimelineBuilder};

/// Runs `f` with a fresh timeline current (capturing backtraces, so that
/// failures show where each action came from) and returns what `f`
/// returned along with the timeline.
pub fn record<R>(f: impl FnOnce() -> R) -> (R, Timeline) {
    record_with(Timeline::builder().capture_backtraces(true), f)
}

/// [`record`] with a timeline built from `builder`, e.g. without
/// backtraces where a test issues very many actions.
///
/// ```
/// use timeline_core::{testing, Timeline};
///
/// let (n, timeline) = testing::record_with(Timeline::builder(), || 7);
/// assert_eq!(n, 7);
/// assert!(timeline.is_empty());
/// ```
pub fn record_with<R>(builder: TimelineBuilder, f: impl FnOnce() -> R) -> (R, Timeline) {
    let timeline = builder.build();
    let result = timeline.scope(f);
    (result, timeline)
}

/// Panics unless the timeline holds at most `max` actions whose category
/// starts with `category_prefix` (nesting actions are not counted). The
/// message lists every matching action.
///
/// ```
/// use timeline_core::{testing, Timeline};
///
/// let timeline = Timeline::new();
/// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
/// timeline.start("memcache-get", "key").unwrap().finish();
/// testing::assert_max_actions(&timeline, "SQL", 1);
/// testing::assert_max_actions(&timeline, "", 2);
/// ```
#[track_caller]
pub fn assert_max_actions(timeline: &Timeline, category_prefix: &str, max: usize) {
    let actions = timeline.actions();
    let matching: Vec<&Action> = actions
        .iter()
        .filter(|a| !a.is_nested() && a.category().starts_with(category_prefix))
        .collect();
    let dropped = timeline.dropped();
    if matching.len() > max || (dropped > 0 && matching.len() as u64 + dropped > max as u64) {
        let mut message = format!(
            "expected at most {max} action{} of category {category_prefix}…, found {}",
            if max == 1 { "" } else { "s" },
            matching.len()
        );
        if dropped > 0 {
            let _ = write!(
                message,
                " (and {dropped} actions not stored: max_actions reached)"
            );
        }
        message.push_str(":\n");
        list(&mut message, &matching);
        panic!("{message}");
    }
}

/// Panics if any statement (detail, with literal values replaced by
/// placeholders, within one category) was issued more than `max_repeats`
/// times: the N+1 query detector as an assertion. The message lists the
/// repeated actions. It looks at the summary's
/// [findings](crate::Summary::findings), so the timeline's
/// [`FindingRules`](crate::FindingRules) and
/// [pauses](crate::Timeline::pause_findings) apply.
///
/// ```
/// use timeline_core::{testing, Timeline};
///
/// let timeline = Timeline::new();
/// for id in [1, 2] {
///     timeline.start("SQL-main", format!("SELECT * FROM person WHERE id = {id}")).unwrap().finish();
/// }
/// testing::assert_max_repeats(&timeline, 2);
/// let failed = std::panic::catch_unwind(|| testing::assert_max_repeats(&timeline, 1));
/// assert!(failed.is_err());
/// ```
#[track_caller]
pub fn assert_max_repeats(timeline: &Timeline, max_repeats: u64) {
    let summary = timeline.summary();
    let Some(worst) = summary.findings().iter().find(|s| s.count() > max_repeats) else {
        return;
    };
    let actions = timeline.actions();
    let matching: Vec<&Action> = actions
        .iter()
        .filter(|a| {
            !a.is_nested()
                && a.category() == worst.category()
                && normalise(a.detail()) == worst.statement()
        })
        .collect();
    let mut message = format!(
        "expected no statement issued more than {max_repeats} time{}, but {} {:?} was issued {} times ({} in all):\n",
        if max_repeats == 1 { "" } else { "s" },
        one_line(worst.category(), CATEGORY_CHARS),
        one_line(worst.statement(), DETAIL_CHARS),
        worst.count(),
        millis(worst.total()),
    );
    list(&mut message, &matching);
    panic!("{message}");
}

/// The most of a detail a failure message shows: enough to recognise a
/// statement, on one line.
const DETAIL_CHARS: usize = 300;

fn list(message: &mut String, actions: &[&Action]) {
    for action in actions {
        let _ = writeln!(
            message,
            "  at {:>11} took {:>11}  {}  {}",
            millis(action.start()),
            millis(action.duration_or_elapsed()),
            one_line(action.category(), CATEGORY_CHARS),
            one_line(action.detail(), DETAIL_CHARS)
        );
        if let Some(backtrace) = action.backtrace() {
            for line in backtrace.lines() {
                let _ = writeln!(message, "      {line}");
            }
        }
    }
}
