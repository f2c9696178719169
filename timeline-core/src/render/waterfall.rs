//! A plain-text waterfall for terminals: a bar per action on a time axis.

use std::fmt::Write as _;
use std::time::Duration;

use crate::Action;
use crate::analysis::annotation;
use crate::text::one_line;
use crate::time::millis;

/// The widest bar drawn, whatever the caller asks for.
const MAX_WIDTH: usize = 1_000;

/// One line per action: offset, duration, category, a bar of `width`
/// columns placed on the request's time axis, and the detail (cut to keep
/// lines short).
pub(crate) fn render(actions: &[Action], elapsed: Duration, width: usize) -> String {
    let width = width.min(MAX_WIDTH);
    let span = actions
        .iter()
        .map(Action::end)
        .max()
        .unwrap_or_default()
        .max(elapsed);
    let span_ns = span.as_nanos().max(1);
    let column = |at: Duration| -> usize {
        let column = at.as_nanos().saturating_mul(width as u128) / span_ns;
        usize::try_from(column).unwrap_or(usize::MAX).min(width)
    };
    let category_width = actions
        .iter()
        .map(|a| a.category().chars().count())
        .max()
        .unwrap_or(0)
        .min(24);
    let lanes = super::lanes::assign(actions);
    let lane_width = match lanes.iter().max() {
        Some(&widest) if widest > 0 => widest.to_string().len().max("lane".len()) + 2,
        _ => 0,
    };
    let lane_column = |lane: &dyn std::fmt::Display| {
        if lane_width == 0 {
            String::new()
        } else {
            format!("{lane:>width$}", width = lane_width - 2) + "  "
        }
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>11} {:>11}  {}{:<category_width$}  |{}| {}",
        "start",
        "duration",
        lane_column(&"lane"),
        "category",
        " ".repeat(width),
        millis(span)
    );
    for (action, lane) in actions.iter().zip(&lanes) {
        let from = column(action.start());
        // Every action shows, however short.
        let to = column(action.end()).max(from + 1).min(width.max(from));
        let mut bar = String::with_capacity(width);
        bar.extend(std::iter::repeat_n(' ', from));
        let fill = if action.is_nested() { '-' } else { '#' };
        bar.extend(std::iter::repeat_n(fill, to.saturating_sub(from)));
        bar.extend(std::iter::repeat_n(' ', width.saturating_sub(to)));
        let category = one_line(action.category(), category_width);
        let _ = writeln!(
            out,
            "{:>11} {:>11}  {}{:<category_width$}  |{bar}| {}{}",
            millis(action.start()),
            millis(action.duration_or_elapsed()),
            lane_column(lane),
            category,
            one_line(action.detail(), 60),
            annotation(action),
        );
    }
    out
}
