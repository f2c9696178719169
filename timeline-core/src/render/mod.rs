//! What people read, rendered from a [`Snapshot`]: the OOPS report and
//! its JSON, the HTML page, a Chrome trace, the `Server-Timing` header, a
//! terminal waterfall and the flat OOPS form. The analysis they show (the
//! summary, findings) is in `analysis/`.
//!
//! Each has a method on [`Snapshot`], for a caller that wants several of
//! one moment, and one on [`Timeline`], which takes the snapshot itself.

mod actions;
mod chrome;
pub(crate) mod html;
mod json;
mod lanes;
mod log_tuples;
mod report;
mod request;
#[cfg(feature = "serde")]
mod serialize;
mod server_timing;
mod waterfall;

pub use report::Report;
pub use request::{ReportReason, RequestContext};

use crate::time::rfc3339;
use crate::{Snapshot, Summary, SummaryLine, Timeline};

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
        self.snapshot().summary()
    }

    /// The per-request log line alone, `N queries/external actions issued
    /// in S.SS seconds`: what [`summary`](Self::summary)'s `Display` writes,
    /// from one pass over the actions, with no copy of a detail and no
    /// statement normalised. For a log line per request.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// assert!(timeline.summary_line().to_string().starts_with("1 queries/external actions"));
    /// ```
    pub fn summary_line(&self) -> SummaryLine {
        let (actions, concurrent, elapsed) = self.line_counts();
        SummaryLine::new(actions, concurrent, elapsed, self.trace_id())
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
        self.snapshot().into_report()
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
        self.snapshot().to_chrome_trace()
    }

    /// The value of an HTTP `Server-Timing` header: the time per category
    /// (never a detail), then the total, for the browser's developer tools.
    /// The costliest twelve categories are named and the rest folded into
    /// one `other` metric, so the header stays under 2 KB. Reads the
    /// timeline without copying any detail.
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
        let (categories, elapsed) =
            self.with_timings(|timings| server_timing::per_category(timings));
        server_timing::header_value(categories, elapsed)
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
        self.snapshot().waterfall(width)
    }
}

impl Snapshot {
    /// An OOPS-shaped report of the snapshot (see
    /// [`Timeline::report`]), leaving the snapshot to other readers.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// let snapshot = timeline.snapshot();
    /// assert_eq!(snapshot.report().summary().action_count(), snapshot.action_count());
    /// ```
    pub fn report(&self) -> Report {
        self.clone().into_report()
    }

    /// The OOPS report, made of the snapshot itself: no copy of its
    /// actions.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// assert_eq!(timeline.snapshot().into_report().actions().len(), 1);
    /// ```
    pub fn into_report(self) -> Report {
        Report::of(self)
    }

    /// Chrome trace-event JSON (see [`Timeline::to_chrome_trace`]).
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// assert!(timeline.snapshot().to_chrome_trace().contains(r#""cat":"SQL-main""#));
    /// ```
    pub fn to_chrome_trace(&self) -> String {
        chrome::trace(
            &format!("timeline {}", rfc3339(self.baseline())),
            self.actions(),
            self.violations(),
        )
    }

    /// The `Server-Timing` header value (see [`Timeline::server_timing`]).
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// assert!(timeline.snapshot().server_timing().starts_with("SQL-main;dur="));
    /// ```
    pub fn server_timing(&self) -> String {
        let timings = self
            .actions()
            .iter()
            .filter(|action| !action.is_nested())
            .map(|action| (action.category(), action.duration_or_elapsed()));
        server_timing::header_value(server_timing::per_category(timings), self.elapsed())
    }

    /// A plain-text waterfall (see [`Timeline::waterfall`]).
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// assert_eq!(timeline.snapshot().waterfall(40).lines().count(), 2);
    /// ```
    pub fn waterfall(&self, width: usize) -> String {
        waterfall::render(self.actions(), self.elapsed(), width)
    }
}
