//! Settings for a new timeline, and the builder that takes them.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::Timeline;
use super::config::{Backtraces, Config, MAX_ACTIONS};
use super::state::Inner;
use crate::analysis::FindingRules;
use crate::clock::{Clock, saturating_nanos};

/// Settings for a new [`Timeline`]: limits, detail filter, backtraces and
/// strictness.
///
/// ```
/// use timeline_core::Timeline;
///
/// let timeline = Timeline::builder()
///     .capture_backtraces(true)
///     .max_actions(10_000)
///     .max_detail_len(4_096)
///     .strict(cfg!(debug_assertions))
///     .build();
/// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
/// assert!(timeline.actions()[0].backtrace().is_some());
/// ```
#[must_use = "a builder does nothing until .build() is called"]
#[derive(Default)]
pub struct TimelineBuilder {
    config: Config,
}

impl fmt::Debug for TimelineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimelineBuilder")
            .field(
                "backtraces",
                &match self.config.backtraces {
                    Backtraces::Never => "never",
                    Backtraces::Always => "always",
                    Backtraces::If(_) => "if",
                    Backtraces::WithoutCallSite => "for bridges",
                },
            )
            .field("max_actions", &self.config.max_actions)
            .field("max_detail_len", &self.config.max_detail_len)
            .field("max_bytes", &self.config.max_bytes)
            .field("detail_filter", &self.config.detail_filter.is_some())
            .field("strict", &self.config.strict)
            .field("finding_rules", &self.config.finding_rules)
            .finish()
    }
}

impl TimelineBuilder {
    /// Capture a backtrace at the start of every action (default `false`):
    /// the fifth element of each log tuple, and what test failures print to
    /// show where a query came from. Costs microseconds per action.
    pub fn capture_backtraces(mut self, capture: bool) -> Self {
        self.config.backtraces = if capture {
            Backtraces::Always
        } else {
            Backtraces::Never
        };
        self
    }

    /// Capture a backtrace only for the actions whose category and detail
    /// (as stored: filtered and cut) `predicate` accepts, like Launchpad's
    /// `tracebacks_if`: the full cost only where it tells something. Replaces
    /// [`capture_backtraces`](Self::capture_backtraces), and is replaced by
    /// it.
    ///
    /// The predicate is user code: it runs without any lock held, a panic in
    /// it means "no backtrace", and an action it starts itself gets none.
    ///
    /// From the second time a statement is issued on, say:
    ///
    /// ```
    /// use std::collections::HashSet;
    /// use std::sync::Mutex;
    /// use timeline_core::Timeline;
    ///
    /// let seen = Mutex::new(HashSet::new());
    /// let timeline = Timeline::builder()
    ///     .capture_backtraces_if(move |category, detail| {
    ///         category.starts_with("SQL")
    ///             && !seen.lock().unwrap().insert(detail.to_owned())
    ///     })
    ///     .build();
    /// for _ in 0..3 {
    ///     timeline.start("SQL-main", "SELECT * FROM person").unwrap().finish();
    /// }
    /// let traced: Vec<bool> = timeline.actions().iter().map(|a| a.backtrace().is_some()).collect();
    /// assert_eq!(traced, [false, true, true]);
    /// ```
    pub fn capture_backtraces_if(
        mut self,
        predicate: impl Fn(&str, &str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.config.backtraces = Backtraces::If(Box::new(predicate));
        self
    }

    /// Capture a backtrace only for the actions whose call site is not
    /// known at their start: those a bridge records (the `tracing` layer's
    /// sqlx, sea-orm, reqwest-tracing…, diesel's instrumentation), whose
    /// call site only a backtrace tells (see
    /// [`Action::call_site`](crate::Action::call_site)). The application's
    /// own actions — `start`, `record`, `#[timed]` — know theirs for free
    /// and get none. Replaces [`capture_backtraces`](Self::capture_backtraces)
    /// and [`capture_backtraces_if`](Self::capture_backtraces_if), and is
    /// replaced by them. What [`testing::scaling`](crate::testing::scaling)
    /// records with.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::builder().capture_backtraces_for_bridges(true).build();
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// assert!(timeline.actions()[0].backtrace().is_none()); // its call site is known
    /// assert!(timeline.actions()[0].call_site().is_some());
    /// ```
    pub fn capture_backtraces_for_bridges(mut self, capture: bool) -> Self {
        self.config.backtraces = if capture {
            Backtraces::WithoutCallSite
        } else {
            Backtraces::Never
        };
        self
    }

    /// Store at most this many actions (default 100,000; at most
    /// 4,294,967,294); later ones are counted in [`Timeline::dropped`]
    /// instead of stored.
    pub fn max_actions(mut self, max_actions: usize) -> Self {
        self.config.max_actions = max_actions.min(MAX_ACTIONS);
        self
    }

    /// Cut details longer than this many bytes (default 65,536) at a char
    /// boundary; a cut detail ends in `…` and, ellipsis included, fits the
    /// limit.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::builder().max_detail_len(10).build();
    /// timeline.start("SQL-main", "SELECT * FROM bug").unwrap().finish();
    /// assert_eq!(timeline.actions()[0].detail(), "SELECT …");
    /// ```
    pub fn max_detail_len(mut self, max_bytes: usize) -> Self {
        self.config.max_detail_len = max_bytes;
        self
    }

    /// Store at most this many bytes (default 16 MiB), counting everything
    /// the timeline keeps: its slots (80 bytes each, allocated in doubling
    /// chunks of 32, 64, 128…), categories and details that are not
    /// `&'static str`, error messages, backtraces and violations. Past it,
    /// actions are counted in [`Timeline::dropped`] instead of stored.
    ///
    /// The default holds about 200,000 actions with static strings, or
    /// about 40,000 with a 300-byte statement each — far more than a web
    /// request should issue — and bounds what one runaway request can
    /// cost. Reports need at most about three times what is stored while
    /// they are built (see the crate documentation).
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::builder().max_bytes(64 * 1024).build();
    /// for n in 0..1_000 {
    ///     timeline.start("SQL-main", format!("SELECT * FROM bug WHERE id = {n}")).unwrap().finish();
    /// }
    /// assert!(timeline.len() < 1_000);
    /// assert_eq!(timeline.len() as u64 + timeline.dropped(), 1_000);
    /// ```
    pub fn max_bytes(mut self, max_bytes: usize) -> Self {
        self.config.max_bytes = max_bytes;
        self
    }

    /// Apply `filter` to every detail before it is stored (and before it is
    /// cut to [`max_detail_len`](Self::max_detail_len)), e.g. to redact
    /// secrets or strip literal values. A filter that panics leaves the
    /// action stored with the detail `<detail filter panicked>`.
    pub fn detail_filter(
        mut self,
        filter: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> Self {
        self.config.detail_filter = Some(Box::new(filter));
        self
    }

    /// Make an overlap that `#[timed]` runs into panic instead of being
    /// recorded as a [`Violation`](crate::Violation) (default `false`). Useful in tests.
    pub fn strict(mut self, strict: bool) -> Self {
        self.config.strict = strict;
        self
    }

    /// What makes a repeated statement a [finding](crate::Finding) in this
    /// timeline's summaries and reports: thresholds and an allow-list (see
    /// [`FindingRules`] for the defaults and why).
    ///
    /// ```
    /// use timeline_core::{FindingRules, Timeline};
    ///
    /// let timeline = Timeline::builder()
    ///     .finding_rules(FindingRules::new().allow_statement("FROM settings"))
    ///     .build();
    /// for _ in 0..2 {
    ///     timeline.start("SQL-main", "SELECT * FROM settings").unwrap().finish();
    /// }
    /// assert!(timeline.summary().findings().is_empty());
    /// ```
    pub fn finding_rules(mut self, rules: FindingRules) -> Self {
        self.config.finding_rules = Some(Arc::new(rules));
        self
    }

    /// The timeline, starting now.
    pub fn build(self) -> Timeline {
        let clock = Clock::start();
        Timeline {
            inner: Arc::new(Inner::new(clock, self.config, None)),
        }
    }

    /// A timeline whose baseline and report time are fixed: for
    /// reproducible reports of actions added with fixed timings.
    pub(crate) fn build_fixed(self, baseline_wall: SystemTime, now: Duration) -> Timeline {
        let clock = Clock::with_wall(baseline_wall);
        let frozen_now_ns = Some(saturating_nanos(now));
        Timeline {
            inner: Arc::new(Inner::new(clock, self.config, frozen_now_ns)),
        }
    }
}
