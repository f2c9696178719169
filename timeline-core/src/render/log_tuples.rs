//! The flat OOPS form of python-oops-timeline: one tuple per action in
//! start order, a nesting action as a `…-start` and a `…-stop` marker
//! around its children.

use std::time::Duration;

use crate::record::whole_millis;
use crate::{Action, LogTuple, Snapshot};

impl Snapshot {
    /// The snapshot in the flat OOPS form (see
    /// [`Timeline::log_tuples`](crate::Timeline::log_tuples)).
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// let transaction = timeline.start_nested("SQL-main", "transaction").unwrap();
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// transaction.finish();
    /// let categories: Vec<String> =
    ///     timeline.snapshot().log_tuples().into_iter().map(|t| t.category).collect();
    /// assert_eq!(categories, ["SQL-main-start", "SQL-main", "SQL-main-stop"]);
    /// ```
    pub fn log_tuples(&self) -> Vec<LogTuple> {
        let actions = self.actions();
        let (storage, stops) = self.log_order();
        // (time, order, position, is_stop): at equal times a `-stop` comes
        // after the actions stored before the nesting action finished, and
        // before those stored after.
        let mut events: Vec<(u64, usize, usize, bool)> =
            Vec::with_capacity(actions.len() + stops.len());
        for (position, (action, slot)) in actions.iter().zip(storage).enumerate() {
            events.push((action.start_ns(), 2 * slot + 1, position, false));
        }
        for (position, end_seq) in stops {
            if let Some(action) = actions.get(position) {
                events.push((action.end_ns(), 2 * end_seq, position, true));
            }
        }
        events.sort_unstable();
        events
            .into_iter()
            .filter_map(|(at_ns, _, position, is_stop)| {
                let action = actions.get(position)?;
                Some(if action.is_nested() {
                    marker(action, at_ns, is_stop)
                } else {
                    action.log_tuple()
                })
            })
            .collect()
    }
}

/// The zero-length `-start` or `-stop` entry of a nesting action; the
/// backtrace goes with its start.
fn marker(action: &Action, at_ns: u64, is_stop: bool) -> LogTuple {
    let (suffix, backtrace) = if is_stop {
        ("-stop", None)
    } else {
        ("-start", action.backtrace())
    };
    let at_ms = whole_millis(Duration::from_nanos(at_ns));
    LogTuple {
        start_ms: at_ms,
        end_ms: at_ms,
        category: format!("{}{suffix}", action.category()),
        detail: action.detail().to_owned(),
        backtrace: backtrace.map(str::to_owned),
    }
}
