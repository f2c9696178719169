//! What people read: the summary line and breakdown, the OOPS report, a
//! Chrome trace, the `Server-Timing` header and a terminal waterfall.

mod actions;
mod chrome;
mod findings;
pub(crate) mod html;
mod json;
mod lanes;
pub(crate) mod normalise;
mod oops;
mod request;
#[cfg(feature = "serde")]
mod serialize;
mod server_timing;
mod summary;
pub(crate) mod time;
mod waterfall;

pub(crate) use findings::Pauses;
pub use findings::{Finding, FindingKind, FindingRules, FindingSite, FindingsPause};
pub use oops::Report;
pub use request::{ReportReason, RequestContext};
pub(crate) use summary::{CATEGORY_CHARS, call_site_text, one_line};
pub use summary::{CategoryStats, RepeatedStatement, Summary};

use std::time::Duration;

use crate::Timeline;

impl Timeline {
    /// What the timeline adds up to: `Display` is the per-request log line
    /// (`"N queries/external actions issued in S.SS seconds"`), `{:#}` adds
    /// the time per category, the slowest actions and the statements issued
    /// more than once — the N+1 query detector.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// let line = timeline.summary().to_string();
    /// assert!(line.starts_with("1 queries/external actions issued in 0.0"));
    /// ```
    pub fn summary(&self) -> Summary {
        let as_of = self.inner.report_now_ns();
        // One lock: the counts agree with the actions even while other
        // threads record.
        let (actions, dropped, violations) = {
            let state = self.inner.lock();
            (state.actions(as_of), state.dropped, state.violations.len())
        };
        let detection = self.detection();
        Summary::new(
            &actions,
            dropped,
            Duration::from_nanos(as_of),
            violations,
            &detection,
        )
        .with_trace_id(self.trace_id())
    }

    /// An OOPS-shaped report of the whole timeline, for error reports:
    /// serialisable with `serde` (feature `serde`) or [`Report::to_json`].
    /// Unfinished actions are reported as ending now.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// let report = timeline.report();
    /// assert_eq!(report.log_tuples()[0].detail, "SELECT 1");
    /// assert_eq!(report.summary().action_count(), 1);
    /// ```
    pub fn report(&self) -> Report {
        let as_of = self.inner.report_now_ns();
        // One snapshot, taken under one lock: the summary, the log tuples and
        // the counts agree even while other threads record.
        let (actions, log_tuples, violations, dropped) = {
            let state = self.inner.lock();
            (
                state.actions(as_of),
                state.log_tuples(as_of),
                state.violations.clone(),
                state.dropped,
            )
        };
        let elapsed = Duration::from_nanos(as_of);
        let detection = self.detection();
        let summary = Summary::new(&actions, dropped, elapsed, violations.len(), &detection)
            .with_trace_id(self.trace_id());
        let mut report = Report::new(
            self.baseline(),
            elapsed,
            log_tuples,
            summary,
            violations,
            dropped,
            actions,
        );
        report.trace_id = self.trace_id();
        report
    }

    /// The timeline as Chrome trace-event JSON: save it to a file and open
    /// it in Perfetto (<https://ui.perfetto.dev>) or `chrome://tracing`.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// let trace = timeline.to_chrome_trace();
    /// assert!(trace.contains(r#""ph":"X""#) && trace.contains(r#""cat":"SQL-main""#));
    /// ```
    pub fn to_chrome_trace(&self) -> String {
        chrome::trace(
            &format!("timeline {}", self.baseline_rfc3339()),
            &self.actions(),
            &self.violations(),
        )
    }

    /// The value of an HTTP `Server-Timing` header: the time per category
    /// (never a detail), then the total, for the browser's developer tools.
    /// The costliest twelve categories are named and the rest folded into
    /// one `other` metric, so the header stays under 2 KB.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// let header = timeline.server_timing();
    /// assert!(header.starts_with("SQL-main;dur="));
    /// assert!(header.contains(", total;dur="));
    /// ```
    pub fn server_timing(&self) -> String {
        let as_of = self.inner.report_now_ns();
        let categories = {
            let state = self.inner.lock();
            server_timing::per_category(state.slots.iter().filter(|slot| !slot.nested).map(
                |slot| {
                    let end_ns = if slot.is_finished() {
                        slot.end_ns
                    } else {
                        as_of
                    };
                    (
                        slot.category(),
                        Duration::from_nanos(end_ns.saturating_sub(slot.start_ns)),
                    )
                },
            ))
        };
        server_timing::header_value(categories, Duration::from_nanos(as_of))
    }

    /// A plain-text waterfall for terminals: a line per action with its
    /// offset, duration and category, and a bar `width` columns wide on the
    /// request's time axis. When actions ran side by side, a `lane` column
    /// puts each [concurrent](crate::Action::is_concurrent) one on a lane of
    /// its own beside the sequence (lane 0).
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// print!("{}", timeline.waterfall(40));
    /// assert_eq!(timeline.waterfall(40).lines().count(), 2);
    /// ```
    pub fn waterfall(&self, width: usize) -> String {
        waterfall::render(&self.actions(), self.elapsed(), width)
    }

    fn baseline_rfc3339(&self) -> String {
        time::rfc3339(self.baseline())
    }
}
