//! The OOPS report: the whole timeline of a request, for error reports.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::json;
use super::request::RequestContext;
use crate::clock::saturating_nanos;
use crate::time::rfc3339;
use crate::{Action, Finding, LogTuple, Snapshot, Summary, TraceId, Violation};

/// An OOPS-shaped report of a timeline, from
/// [`Timeline::report`](crate::Timeline::report): what an error report
/// attaches so that it shows where the request's time went.
///
/// With the `serde` feature it implements `serde::Serialize`; without, use
/// [`to_json`](Self::to_json). The JSON has the keys `id`, `baseline` (RFC
/// 3339, UTC), `duration_ms`, `timeline` (the 5-element log tuples of
/// python-oops-timeline: `[start_ms, end_ms, category, detail,
/// backtrace]`), `summary`, `violations` and `dropped`, `late` (after
/// `dropped`) when actions arrived after the request's report was made,
/// and `trace_id` (after `id`) when the timeline carries a
/// [`TraceContext`](crate::TraceContext); then `actions` (each action with
/// `start_us` and `duration_us` in microseconds, its category, detail,
/// `outcome` and `error` text, `finished`, `nested`, `concurrent`, its
/// drawing `lane` and `call_site`) and `request` (method, path, status,
/// reason and error when a web layer made the report, else `null`).
///
/// ```
/// use timeline_core::Timeline;
///
/// let timeline = Timeline::new();
/// let _in_flight = timeline.start("SQL-main", "SELECT pg_sleep(10)").unwrap();
/// let report = timeline.report(); // also with actions still running
/// assert!(report.id().starts_with("OOPS-"));
/// let json = report.to_json();
/// assert!(json.contains(r#""timeline":[[0,"#));
/// assert!(json.contains("SELECT pg_sleep(10)"));
/// ```
#[derive(Clone, Debug)]
pub struct Report {
    pub(crate) id: String,
    pub(crate) baseline: SystemTime,
    pub(crate) duration: Duration,
    pub(crate) timeline: Vec<LogTuple>,
    pub(crate) summary: Summary,
    pub(crate) violations: Vec<Violation>,
    pub(crate) dropped: u64,
    pub(crate) late: u64,
    pub(crate) actions: Vec<Action>,
    pub(crate) request: Option<RequestContext>,
    /// The distributed trace, if the timeline carries a trace context.
    pub(crate) trace_id: Option<TraceId>,
}

impl Report {
    /// The report of a snapshot, which it keeps: no copy of the actions.
    pub(crate) fn of(snapshot: Snapshot) -> Report {
        let timeline = snapshot.log_tuples();
        let summary = snapshot.summary();
        let trace_id = snapshot.trace_id();
        let (baseline, duration, dropped, late) = (
            snapshot.baseline(),
            snapshot.elapsed(),
            snapshot.dropped(),
            snapshot.late(),
        );
        let (actions, violations) = snapshot.into_parts();
        Report {
            id: new_id(baseline),
            baseline,
            duration,
            timeline,
            summary,
            violations,
            dropped,
            late,
            actions,
            request: None,
            trace_id,
        }
    }

    /// The report with the request it belongs to attached: what the tower
    /// layer does, and what other frameworks can do.
    ///
    /// ```
    /// use timeline_core::{RequestContext, Timeline};
    ///
    /// let report = Timeline::new().report().with_request(RequestContext::new("POST", "/bugs"));
    /// assert_eq!(report.request().unwrap().method(), "POST");
    /// ```
    pub fn with_request(mut self, request: RequestContext) -> Report {
        self.request = Some(request);
        self
    }

    /// The request the report belongs to, when a web layer made it.
    pub fn request(&self) -> Option<&RequestContext> {
        self.request.as_ref()
    }

    /// Every stored action, in start order, with its full duration (a
    /// nesting action once): what the log tuples flatten to whole
    /// milliseconds. Unfinished actions end when the report was made.
    ///
    /// ```
    /// use timeline_core::{Outcome, Timeline};
    ///
    /// let timeline = Timeline::new();
    /// let query = timeline.start("SQL-main", "UPDATE bug SET status = 3").unwrap();
    /// query.finish_with(Outcome::Error("CHECK constraint failed".into()));
    /// let report = timeline.report();
    /// assert_eq!(report.actions()[0].outcome(), &Outcome::Error("CHECK constraint failed".into()));
    /// assert!(report.to_json().contains(r#""outcome":"error","error":"CHECK constraint failed""#));
    /// ```
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// The report's actions as Chrome trace-event JSON, as
    /// [`Timeline::to_chrome_trace`](crate::Timeline::to_chrome_trace)
    /// makes it: for a report kept after its request ended.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// assert!(timeline.report().to_chrome_trace().contains(r#""cat":"SQL-main""#));
    /// ```
    pub fn to_chrome_trace(&self) -> String {
        super::chrome::trace(
            &format!("{} {}", self.id, rfc3339(self.baseline)),
            &self.actions,
            &self.violations,
        )
    }

    /// About how many bytes the report holds, for stores that keep
    /// reports within a byte bound.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn approx_bytes(&self) -> usize {
        let strings = |a: &str, b: &str| a.len() + b.len();
        let actions: usize = self
            .actions
            .iter()
            .map(|a| {
                std::mem::size_of::<Action>()
                    + strings(a.category(), a.detail())
                    + a.backtrace().map_or(0, str::len)
            })
            .sum();
        let tuples: usize = self
            .timeline
            .iter()
            .map(|t| {
                std::mem::size_of::<LogTuple>()
                    + strings(&t.category, &t.detail)
                    + t.backtrace.as_ref().map_or(0, String::len)
            })
            .sum();
        let summary: usize = self
            .summary
            .repeated_statements()
            .iter()
            .map(|r| 96 + r.statement().len() + r.example().len() + r.category().len())
            .chain(
                self.summary
                    .categories()
                    .iter()
                    .map(|c| 64 + c.category().len()),
            )
            .chain(
                self.summary
                    .slowest()
                    .iter()
                    .map(|a| std::mem::size_of::<Action>() + strings(a.category(), a.detail())),
            )
            .sum();
        let violations: usize = self
            .violations
            .iter()
            .map(|v| 64 + v.to_string().len())
            .sum();
        std::mem::size_of::<Report>()
            + self.id.len()
            + actions
            + tuples
            + summary
            + violations
            + self.request.as_ref().map_or(0, RequestContext::heap_bytes)
    }

    /// A unique id, e.g. `OOPS-19ACB3F2E45-3A2F-0`: time, process and a
    /// counter, so that ids differ across reports, processes and restarts.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The id of the distributed trace the request belongs to, when its
    /// timeline carries a [`TraceContext`](crate::TraceContext): the link
    /// from an OOPS report to the trace in Jaeger, Tempo or another backend.
    pub fn trace_id(&self) -> Option<TraceId> {
        self.trace_id
    }

    /// When the timeline started, wall-clock.
    pub fn baseline(&self) -> SystemTime {
        self.baseline
    }

    /// How long the request had run when the report was made.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The timeline in the flat OOPS form.
    pub fn log_tuples(&self) -> &[LogTuple] {
        &self.timeline
    }

    /// The summary of the timeline.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The overlaps `#[timed]` ran into.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// How many actions were not stored because of `max_actions`.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// How many actions had arrived after the request's report was made,
    /// when this one was made (see [`Timeline::late`](crate::Timeline::late)):
    /// 0 in the report the web layer makes, and in a report made later of
    /// the same timeline, what came after. In the JSON as `late`, when not 0.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// The report as JSON, without needing the `serde` feature; the same
    /// document `serde_json` makes of it.
    pub fn to_json(&self) -> String {
        // Sized once from the details, which are most of the output (twice:
        // in the log tuples and in the actions).
        let details: usize = self
            .actions
            .iter()
            .map(|a| a.detail().len() + a.call_site().map_or(0, |site| site.file().len()))
            .sum();
        let mut out = String::with_capacity(256 + 2 * details + self.actions.len() * 320);
        out.push_str("{\"id\":");
        json::push_str(&mut out, &self.id);
        if let Some(trace_id) = self.trace_id {
            let _ = write!(out, ",\"trace_id\":\"{trace_id}\"");
        }
        out.push_str(",\"baseline\":");
        json::push_str(&mut out, &rfc3339(self.baseline));
        out.push_str(",\"duration_ms\":");
        json::push_millis(&mut out, saturating_nanos(self.duration));
        out.push_str(",\"timeline\":[");
        for (n, tuple) in self.timeline.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            let _ = write!(out, "[{},{},", tuple.start_ms, tuple.end_ms);
            json::push_str(&mut out, &tuple.category);
            out.push(',');
            json::push_str(&mut out, &tuple.detail);
            out.push(',');
            match &tuple.backtrace {
                Some(backtrace) => json::push_str(&mut out, backtrace),
                None => out.push_str("null"),
            }
            out.push(']');
        }
        out.push_str("],\"summary\":");
        summary_json(&mut out, &self.summary);
        out.push_str(",\"violations\":[");
        for (n, violation) in self.violations.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            violation_json(&mut out, violation);
        }
        let _ = write!(out, "],\"dropped\":{}", self.dropped);
        if self.late > 0 {
            let _ = write!(out, ",\"late\":{}", self.late);
        }
        out.push_str(",\"actions\":");
        super::actions::push_json(
            &mut out,
            &self.actions,
            &super::lanes::assign(&self.actions),
        );
        out.push_str(",\"request\":");
        match &self.request {
            Some(request) => request_json(&mut out, request),
            None => out.push_str("null"),
        }
        out.push('}');
        out
    }
}

fn new_id(baseline: SystemTime) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let micros = baseline
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("OOPS-{micros:X}-{:X}-{n:X}", std::process::id())
}

fn summary_json(out: &mut String, summary: &Summary) {
    let _ = write!(out, "{{\"line\":");
    json::push_str(out, &summary.to_string());
    let _ = write!(
        out,
        ",\"actions\":{},\"concurrent\":{},\"dropped\":{},\"duration_ms\":",
        summary.action_count(),
        summary.concurrent_count(),
        summary.dropped()
    );
    json::push_millis(out, saturating_nanos(summary.duration()));
    out.push_str(",\"categories\":[");
    for (n, stats) in summary.categories().iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str("{\"category\":");
        json::push_str(out, stats.category());
        let _ = write!(out, ",\"count\":{},\"total_ms\":", stats.count());
        json::push_millis(out, saturating_nanos(stats.total()));
        out.push_str(",\"max_ms\":");
        json::push_millis(out, saturating_nanos(stats.max()));
        out.push('}');
    }
    out.push_str("],\"repeated_statements\":[");
    for (n, statement) in summary.repeated_statements().iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str("{\"category\":");
        json::push_str(out, statement.category());
        out.push_str(",\"statement\":");
        json::push_str(out, statement.statement());
        let _ = write!(out, ",\"count\":{},\"total_ms\":", statement.count());
        json::push_millis(out, saturating_nanos(statement.total()));
        out.push_str(",\"example\":");
        json::push_str(out, statement.example());
        out.push('}');
    }
    out.push_str("],\"findings\":[");
    for (n, finding) in summary.findings().iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        finding_json(out, finding);
    }
    out.push_str("]}");
}

fn finding_json(out: &mut String, finding: &Finding) {
    let _ = write!(out, "{{\"kind\":\"{}\",\"category\":", finding.kind());
    json::push_str(out, finding.category());
    out.push_str(",\"statement\":");
    json::push_str(out, finding.statement());
    let _ = write!(out, ",\"count\":{},\"total_ms\":", finding.count());
    json::push_millis(out, saturating_nanos(finding.total()));
    out.push_str(",\"example\":");
    json::push_str(out, finding.example());
    out.push_str(",\"call_sites\":[");
    for (n, site) in finding.call_sites().iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let call_site = site.call_site();
        out.push_str("{\"file\":");
        json::push_str(out, call_site.file());
        let _ = write!(
            out,
            ",\"line\":{},\"column\":{},\"count\":{}",
            call_site.line(),
            call_site.column(),
            site.count()
        );
        // Only for a call site from a backtrace: the others name none.
        if let Some(function) = call_site.function() {
            out.push_str(",\"function\":");
            json::push_str(out, function);
        }
        out.push('}');
    }
    out.push_str("]}");
}

fn request_json(out: &mut String, request: &RequestContext) {
    out.push_str("{\"method\":");
    json::push_str(out, request.method());
    out.push_str(",\"path\":");
    json::push_str(out, request.path());
    out.push_str(",\"status\":");
    match request.status() {
        Some(status) => {
            let _ = write!(out, "{status}");
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"reason\":");
    super::actions::push_optional(out, request.reason().map(|r| r.as_str()));
    out.push_str(",\"error\":");
    super::actions::push_optional(out, request.error());
    out.push('}');
}

fn violation_json(out: &mut String, violation: &Violation) {
    out.push_str("{\"at_ms\":");
    json::push_millis(out, saturating_nanos(violation.at()));
    out.push_str(",\"open\":{\"category\":");
    json::push_str(out, violation.open_category());
    out.push_str(",\"detail\":");
    json::push_str(out, violation.open_detail());
    out.push_str("},\"attempted\":{\"category\":");
    json::push_str(out, violation.attempted_category());
    out.push_str(",\"detail\":");
    json::push_str(out, violation.attempted_detail());
    out.push_str("}}");
}
