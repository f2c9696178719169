//! The `actions` list of a report: each action with microsecond offsets,
//! outcome, nesting and concurrency, its lane and depth for drawing, and
//! its call site where known.

use std::fmt::Write as _;

use super::json;
use crate::clock::saturating_nanos;
use crate::{Action, Outcome};

/// Where an action was issued, as `file:line:column`, if known: what the
/// JSON report, serde and the HTML page show of
/// [`Action::call_site`](crate::Action::call_site).
pub(crate) fn call_site(action: &Action) -> Option<String> {
    action.call_site().map(|site| site.to_string())
}

/// The outcome as one word: `ok`, `error`, `panicked`, `cancelled` or
/// `not_reported`.
pub(super) fn outcome_word(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Ok => "ok",
        Outcome::Error(_) => "error",
        Outcome::Panicked => "panicked",
        Outcome::Cancelled => "cancelled",
        Outcome::NotReported => "not_reported",
    }
}

/// The outcome as people read it on a page: the word, except for an
/// outcome the source did not report, which says so.
pub(super) fn outcome_label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::NotReported => "outcome not reported",
        outcome => outcome_word(outcome),
    }
}

/// The error message of an action that failed.
pub(super) fn error_text(outcome: &Outcome) -> Option<&str> {
    match outcome {
        Outcome::Error(message) => Some(message),
        _ => None,
    }
}

/// Whole microseconds of a duration.
pub(crate) fn micros(duration: std::time::Duration) -> u64 {
    saturating_nanos(duration) / 1_000
}

/// How deep each action of `actions` (in start order) sits inside nesting
/// actions: 0 at the top, 1 inside a transaction, and so on.
pub(super) fn depths(actions: &[Action]) -> Vec<usize> {
    let mut open: Vec<std::time::Duration> = Vec::new();
    actions
        .iter()
        .map(|action| {
            while open.last().is_some_and(|&end| end <= action.start()) {
                open.pop();
            }
            let depth = open.len();
            if action.is_nested() {
                open.push(action.end());
            }
            depth
        })
        .collect()
}

/// Appends the JSON list of `actions`, each with its lane.
pub(super) fn push_json(out: &mut String, actions: &[Action], lanes: &[usize]) {
    out.push('[');
    for (n, (action, lane)) in actions.iter().zip(lanes).enumerate() {
        if n > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"start_us\":{},\"duration_us\":{},\"category\":",
            micros(action.start()),
            micros(action.duration_or_elapsed())
        );
        json::push_str(out, action.category());
        out.push_str(",\"detail\":");
        json::push_str(out, action.detail());
        let _ = write!(
            out,
            ",\"outcome\":\"{}\",\"error\":",
            outcome_word(action.outcome())
        );
        push_optional(out, error_text(action.outcome()));
        let _ = write!(
            out,
            ",\"finished\":{},\"nested\":{},\"concurrent\":{},\"lane\":{lane},\"call_site\":",
            action.duration().is_some(),
            action.is_nested(),
            action.is_concurrent()
        );
        push_optional(out, call_site(action).as_deref());
        out.push('}');
    }
    out.push(']');
}

/// Appends a JSON string, or `null`.
pub(super) fn push_optional(out: &mut String, text: Option<&str>) {
    match text {
        Some(text) => json::push_str(out, text),
        None => out.push_str("null"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::__hooks::{fixed_timeline, push_fixed};

    #[test]
    fn depth_counts_the_nesting_actions_around_an_action() {
        let timeline = fixed_timeline(UNIX_EPOCH, Duration::from_millis(100));
        let ms = Duration::from_millis;
        push_fixed(
            &timeline,
            "tx",
            "outer",
            ms(0),
            Some(ms(50)),
            true,
            Outcome::Ok,
        );
        push_fixed(
            &timeline,
            "tx",
            "inner",
            ms(1),
            Some(ms(20)),
            true,
            Outcome::Ok,
        );
        push_fixed(
            &timeline,
            "SQL",
            "a",
            ms(2),
            Some(ms(1)),
            false,
            Outcome::Ok,
        );
        push_fixed(
            &timeline,
            "SQL",
            "b",
            ms(30),
            Some(ms(1)),
            false,
            Outcome::Ok,
        );
        push_fixed(
            &timeline,
            "SQL",
            "c",
            ms(60),
            Some(ms(1)),
            false,
            Outcome::Ok,
        );
        assert_eq!(depths(&timeline.actions()), [0, 1, 2, 1, 0]);
    }
}
