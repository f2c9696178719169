//! The per-request summary: the log line, categories, slowest actions and
//! repeated statements (the N+1 query detector).

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use super::finding::Finding;
use super::findings::{self, Detection};
use super::normalise::normalise;
use super::statement::RepeatedStatement;
use crate::text::one_line;
use crate::time::millis;
use crate::{Action, CallSite, Outcome, Snapshot, TraceId};

/// The most of a category any text report shows: a category is a short
/// label, and one that is not must not widen every line.
pub(crate) const CATEGORY_CHARS: usize = 40;

/// How many of the slowest actions a summary lists.
const SLOWEST: usize = 5;

/// How many call sites of a finding a summary lists.
const CALL_SITES: usize = 5;

/// What a request's timeline adds up to, from
/// [`Timeline::summary`](crate::Timeline::summary).
///
/// `Display` gives the Launchpad log line; the alternate form (`{:#}`) adds a
/// table per category, the slowest actions and the
/// [findings](Summary::findings) among the repeated statements.
/// Nesting actions (transactions and the like) contain other actions, so
/// they are not counted again: the figures are those of the actions that do
/// the work.
///
/// ```
/// use timeline_core::Timeline;
///
/// let timeline = Timeline::new();
/// for id in 1..=3 {
///     timeline.start("SQL-main", format!("SELECT * FROM person WHERE id = {id}")).unwrap().finish();
/// }
/// let summary = timeline.summary();
/// assert!(summary.to_string().starts_with("3 queries/external actions issued in "));
/// let repeated = &summary.repeated_statements()[0];
/// assert_eq!((repeated.statement(), repeated.count()), ("SELECT * FROM person WHERE id = ?", 3));
/// println!("{summary:#}");
/// ```
#[derive(Clone, Debug)]
pub struct Summary {
    actions: u64,
    concurrent: u64,
    dropped: u64,
    duration: Duration,
    categories: Vec<CategoryStats>,
    slowest: Vec<Action>,
    repeated: Vec<RepeatedStatement>,
    findings: Vec<Finding>,
    violations: usize,
    /// The distributed trace, named at the end of the log line.
    trace_id: Option<TraceId>,
    /// Actions that arrived after the report was made.
    late: u64,
}

/// The actions of one category: how many, how long in all, the longest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CategoryStats {
    category: String,
    count: u64,
    total: Duration,
    max: Duration,
}

impl Snapshot {
    /// What the timeline adds up to (see [`Timeline::summary`](crate::Timeline::summary)).
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// let snapshot = timeline.snapshot();
    /// assert_eq!(snapshot.summary().action_count(), 1);
    /// ```
    pub fn summary(&self) -> Summary {
        Summary::new(
            self.actions(),
            self.dropped(),
            self.elapsed(),
            self.violations().len(),
            &Detection::of(self),
        )
        .with_trace_id(self.trace_id())
        .with_late(self.late())
    }
}

impl Snapshot {
    /// The log line alone (see [`SummaryLine`]).
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let snapshot = Timeline::new().snapshot();
    /// assert_eq!(snapshot.summary_line().to_string(), snapshot.summary().to_string());
    /// ```
    pub fn summary_line(&self) -> SummaryLine {
        let concurrent = self
            .actions()
            .iter()
            .filter(|action| !action.is_nested() && action.is_concurrent())
            .count();
        SummaryLine::new(
            self.action_count(),
            u64::try_from(concurrent).unwrap_or(u64::MAX),
            self.elapsed(),
            self.trace_id(),
        )
    }
}

impl Summary {
    /// Summarises `actions` of a timeline that ran for `duration`.
    pub(super) fn new(
        actions: &[Action],
        dropped: u64,
        duration: Duration,
        violations: usize,
        detection: &Detection<'_>,
    ) -> Summary {
        let mut categories: Vec<CategoryStats> = Vec::new();
        let mut category_index: HashMap<&str, usize> = HashMap::new();
        let mut repeated: Vec<RepeatedStatement> = Vec::new();
        let mut statement_index: HashMap<(&str, String), usize> = HashMap::new();
        let mut slowest: Vec<&Action> = Vec::with_capacity(SLOWEST + 1);
        let mut members: Vec<(usize, &Action)> = Vec::with_capacity(actions.len());
        let mut count = 0u64;
        let mut concurrent = 0u64;

        for action in actions.iter().filter(|a| !a.is_nested()) {
            count += 1;
            concurrent += u64::from(action.is_concurrent());
            let took = action.duration_or_elapsed();

            let index = *category_index.entry(action.category()).or_insert_with(|| {
                categories.push(CategoryStats {
                    category: action.category().to_owned(),
                    count: 0,
                    total: Duration::ZERO,
                    max: Duration::ZERO,
                });
                categories.len() - 1
            });
            let stats = &mut categories[index];
            stats.count += 1;
            stats.total += took;
            stats.max = stats.max.max(took);

            let key = (action.category(), normalise(action.detail()));
            let index = match statement_index.get(&key) {
                Some(&index) => index,
                None => {
                    repeated.push(RepeatedStatement {
                        category: action.category().to_owned(),
                        statement: key.1.clone(),
                        count: 0,
                        total: Duration::ZERO,
                        example: action.detail().to_owned(),
                    });
                    statement_index.insert(key, repeated.len() - 1);
                    repeated.len() - 1
                }
            };
            repeated[index].count += 1;
            repeated[index].total += took;
            members.push((index, action));

            // Insertion into a list of at most SLOWEST: linear overall.
            let at = slowest.partition_point(|kept| kept.duration_or_elapsed() >= took);
            if at < SLOWEST {
                slowest.insert(at, action);
                slowest.truncate(SLOWEST);
            }
        }

        categories.sort_by(|a, b| {
            b.total
                .cmp(&a.total)
                .then_with(|| a.category.cmp(&b.category))
        });
        let findings = findings::find(&repeated, &members, detection);
        repeated.retain(|statement| statement.count > 1);
        repeated.sort_by(|a, b| {
            b.total
                .cmp(&a.total)
                .then_with(|| b.count.cmp(&a.count))
                .then_with(|| a.statement.cmp(&b.statement))
        });
        Summary {
            actions: count + dropped,
            concurrent,
            dropped,
            duration,
            categories,
            slowest: slowest.into_iter().cloned().collect(),
            repeated,
            findings,
            violations,
            trace_id: None,
            late: 0,
        }
    }

    /// The summary with the count of actions that arrived too late.
    pub(super) fn with_late(mut self, late: u64) -> Summary {
        self.late = late;
        self
    }

    /// How many actions arrived after the request's report was made, and
    /// were counted instead of stored (see [`Timeline::late`](crate::Timeline::late)).
    pub fn late(&self) -> u64 {
        self.late
    }

    /// The summary with the trace id its log line names.
    pub(super) fn with_trace_id(mut self, trace_id: Option<TraceId>) -> Summary {
        self.trace_id = trace_id;
        self
    }

    /// How many actions the request issued, dropped ones included (nesting
    /// actions are not counted).
    pub fn action_count(&self) -> u64 {
        self.actions
    }

    /// The log line alone (what `Display` writes without `{:#}`).
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let summary = Timeline::new().summary();
    /// assert_eq!(summary.line().to_string(), summary.to_string());
    /// ```
    pub fn line(&self) -> SummaryLine {
        SummaryLine::new(self.actions, self.concurrent, self.duration, self.trace_id)
    }

    /// How many of the stored actions ran beside others
    /// ([concurrent](crate::Action::is_concurrent)): `join!`ed queries,
    /// overlapping calls. The log line names them when there are any.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// let _request = timeline.start("HTTP-get", "/bugs").unwrap();
    /// timeline.record("SQL-main", "SELECT 1", Instant::now(), Duration::from_millis(1));
    /// let summary = timeline.summary();
    /// assert_eq!(summary.concurrent_count(), 1);
    /// assert!(summary.to_string().ends_with(" seconds (1 concurrent)"));
    /// ```
    pub fn concurrent_count(&self) -> u64 {
        self.concurrent
    }

    /// How many actions were not stored because of
    /// [`max_actions`](crate::TimelineBuilder::max_actions).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// How long the request has run: the timeline's elapsed time.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Per category, by total time, longest first.
    pub fn categories(&self) -> &[CategoryStats] {
        &self.categories
    }

    /// The slowest actions, slowest first (at most five).
    pub fn slowest(&self) -> &[Action] {
        &self.slowest
    }

    /// Statements issued more than once (after replacing literal values by
    /// placeholders), by total time, longest first: N+1 candidates, every
    /// one of them; [`findings`](Self::findings) are those worth a look.
    ///
    /// Statements compare equal by the rules on which PostgreSQL's
    /// `pg_stat_statements`, MySQL's statement digests and Percona's
    /// `pt-fingerprint` agree: literals of every kind (numbers, strings,
    /// `TRUE`, a `NULL` value) become `?`, an `IN (…)` list of values and a
    /// run of `VALUES (…)` rows become `(...)`, comments, `ASC` and a final
    /// `;` go, and neither whitespace nor the case of keywords and names
    /// matters, nor quotes around a name (`"bug"` is `bug`: double quotes
    /// quote names, as in standard SQL and PostgreSQL, not strings as in
    /// MySQL). Placeholders (`$1`, `?`, `:name`) stay as written.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// timeline.start("SQL-main", "select * from Bug where id in (1, 2);").unwrap().finish();
    /// timeline.start("SQL-main", r#"SELECT * FROM "bug" WHERE id IN (3) -- again"#).unwrap().finish();
    /// let summary = timeline.summary();
    /// let repeated = &summary.repeated_statements()[0];
    /// assert_eq!((repeated.statement(), repeated.count()), ("SELECT * FROM bug WHERE id IN (...)", 2));
    /// ```
    pub fn repeated_statements(&self) -> &[RepeatedStatement] {
        &self.repeated
    }

    /// The repeated statements worth a look, by total time, longest first:
    /// each [similar](crate::FindingKind::Similar) (the same statement with
    /// other values, the N+1 signal) or
    /// [duplicate](crate::FindingKind::Duplicate) (the very same statement
    /// again), with its count, time, call sites and an example. Unlike
    /// [`repeated_statements`](Self::repeated_statements), findings follow
    /// the timeline's [`FindingRules`](crate::FindingRules) (thresholds, an
    /// allow-list) and its [pauses](crate::Timeline::pause_findings).
    ///
    /// ```
    /// use timeline_core::{FindingKind, Timeline};
    ///
    /// let timeline = Timeline::new();
    /// for id in [7, 8, 9] {
    ///     timeline.start("SQL-main", format!("SELECT name FROM person WHERE id = {id}")).unwrap().finish();
    /// }
    /// let summary = timeline.summary();
    /// let finding = &summary.findings()[0];
    /// assert_eq!((finding.kind(), finding.count()), (FindingKind::Similar, 3));
    /// assert!(format!("{summary:#}").contains("similar"));
    /// ```
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The id of the distributed trace the request belongs to, when its
    /// timeline carries a [`TraceContext`](crate::TraceContext); the log
    /// line then ends in `, trace <id>`.
    pub fn trace_id(&self) -> Option<TraceId> {
        self.trace_id
    }

    /// How many overlaps `#[timed]`, the bridges and `record` ran into.
    pub fn violation_count(&self) -> usize {
        self.violations
    }

    /// The share of the request's time spent in `total`.
    pub(crate) fn share(&self, total: Duration) -> f64 {
        if self.duration.is_zero() {
            0.0
        } else {
            total.as_secs_f64() / self.duration.as_secs_f64()
        }
    }
}

impl CategoryStats {
    /// The category, e.g. `SQL-main`.
    pub fn category(&self) -> &str {
        &self.category
    }

    /// How many actions.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Their time added up.
    pub fn total(&self) -> Duration {
        self.total
    }

    /// The longest one.
    pub fn max(&self) -> Duration {
        self.max
    }
}

/// The per-request log line alone — `N queries/external actions issued in
/// S.SS seconds`, the concurrent count and the trace id — from
/// [`Timeline::summary_line`](crate::Timeline::summary_line): one pass over
/// the actions, nothing copied or normalised. [`Summary`]'s `Display` is
/// the same line; use this where only the line is wanted, as in a log line
/// per request.
///
/// ```
/// use timeline_core::Timeline;
///
/// let timeline = Timeline::new();
/// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
/// let line = timeline.summary_line();
/// assert_eq!(line.action_count(), 1);
/// assert_eq!(line.to_string(), timeline.summary().line().to_string());
/// assert!(line.to_string().starts_with("1 queries/external actions issued in 0.0"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SummaryLine {
    actions: u64,
    concurrent: u64,
    duration: Duration,
    trace_id: Option<TraceId>,
}

impl SummaryLine {
    pub(crate) fn new(
        actions: u64,
        concurrent: u64,
        duration: Duration,
        trace_id: Option<TraceId>,
    ) -> Self {
        SummaryLine {
            actions,
            concurrent,
            duration,
            trace_id,
        }
    }

    /// How many actions the request issued, dropped ones included (nesting
    /// actions are not counted).
    pub fn action_count(&self) -> u64 {
        self.actions
    }

    /// How many of them ran beside the sequence (see
    /// [`Action::is_concurrent`]).
    pub fn concurrent_count(&self) -> u64 {
        self.concurrent
    }

    /// The time the timeline ran, to the moment the line was made.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The distributed trace the line names, if any.
    pub fn trace_id(&self) -> Option<TraceId> {
        self.trace_id
    }
}

impl fmt::Display for SummaryLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} queries/external actions issued in {:.2} seconds",
            self.actions,
            self.duration.as_secs_f64()
        )?;
        if self.concurrent > 0 {
            write!(f, " ({} concurrent)", self.concurrent)?;
        }
        if let Some(trace_id) = self.trace_id {
            write!(f, ", trace {trace_id}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.line())?;
        if !f.alternate() {
            return Ok(());
        }
        if !self.categories.is_empty() {
            // Categories come from the request's code and data: one line
            // each, and a column no wider than a bounded label.
            let width = self
                .categories
                .iter()
                .map(|c| c.category.chars().count())
                .max()
                .unwrap_or(0)
                .clamp("category".len(), CATEGORY_CHARS);
            write!(
                f,
                "\n\nBy category:\n  {:<width$}  {:>5}  {:>11}  {:>11}  {:>6}",
                "category", "count", "total", "max", "share"
            )?;
            for stats in &self.categories {
                write!(
                    f,
                    "\n  {:<width$}  {:>5}  {:>11}  {:>11}  {:>5.1}%",
                    one_line(&stats.category, CATEGORY_CHARS),
                    stats.count,
                    millis(stats.total),
                    millis(stats.max),
                    100.0 * self.share(stats.total)
                )?;
            }
        }
        if !self.slowest.is_empty() {
            f.write_str("\n\nSlowest actions:")?;
            for action in &self.slowest {
                write!(
                    f,
                    "\n  {:>11}  at {:>11}  {}  {}{}{}",
                    millis(action.duration_or_elapsed()),
                    millis(action.start()),
                    one_line(action.category(), CATEGORY_CHARS),
                    one_line(action.detail(), 120),
                    annotation(action),
                    call_site_text(action)
                )?;
            }
        }
        if !self.findings.is_empty() {
            f.write_str("\n\nFindings (N+1 candidates):")?;
            for finding in &self.findings {
                write!(
                    f,
                    "\n  {:>4}×  {:>11}  {:<9}  {}  {}\n         e.g. {}",
                    finding.count(),
                    millis(finding.total()),
                    finding.kind().to_string(),
                    one_line(finding.category(), CATEGORY_CHARS),
                    one_line(finding.statement(), 120),
                    one_line(finding.example(), 120)
                )?;
                let sites = finding.call_sites();
                for site in sites.iter().take(CALL_SITES) {
                    write!(
                        f,
                        "\n         at {} ({}×)",
                        one_line(&site_text(&site.call_site()), 120),
                        site.count()
                    )?;
                }
                if sites.len() > CALL_SITES {
                    write!(
                        f,
                        "\n         and {} more call sites",
                        sites.len() - CALL_SITES
                    )?;
                }
            }
        }
        if self.dropped > 0 {
            write!(
                f,
                "\n\n{} actions not stored (max_actions or max_bytes reached)",
                self.dropped
            )?;
        }
        if self.violations > 0 {
            write!(
                f,
                "\n\n{} overlaps noted: those actions ran beside the sequence (see violations)",
                self.violations
            )?;
        }
        if self.late > 0 {
            write!(
                f,
                "\n\n{} actions arrived after the report was made (late): counted, not on this timeline",
                self.late
            )?;
        }
        Ok(())
    }
}

/// How an action that did not simply succeed ended, for text reports.
pub(crate) fn annotation(action: &Action) -> String {
    match (action.duration(), action.outcome()) {
        (None, _) => " (unfinished)".to_owned(),
        (Some(_), Outcome::Ok) => String::new(),
        (Some(_), Outcome::NotReported) => " (outcome not reported)".to_owned(),
        (Some(_), outcome) => format!(" ({})", one_line(&outcome.to_string(), 80)),
    }
}

/// `  (at file:line:column)`, or nothing when the call site is unknown.
pub(crate) fn call_site_text(action: &Action) -> String {
    action
        .call_site()
        .map(|site| format!("  (at {})", one_line(&site.to_string(), 300)))
        .unwrap_or_default()
}

/// `file:line`, or the function where the build has no line tables.
fn site_text(site: &CallSite<'_>) -> String {
    if site.has_location() {
        format!("{}:{}", site.file(), site.line())
    } else {
        site.to_string()
    }
}
