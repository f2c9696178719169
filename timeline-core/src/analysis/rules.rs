//! What makes a repeated statement a finding: thresholds, an allow-list of
//! statements and call sites, and allow predicates.

use std::cell::Cell;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use super::finding::Finding;
use super::normalise::normalise;
use crate::CallSite;

thread_local! {
    /// Set while an allow predicate runs on this thread: a summary made
    /// inside it does not run the predicates again.
    static IN_PREDICATE: Cell<bool> = const { Cell::new(false) };
}

type AllowPredicate = Arc<dyn Fn(&Finding) -> bool + Send + Sync>;

/// What makes a repeated statement a [`Finding`]: thresholds and an
/// allow-list, given to [`TimelineBuilder::finding_rules`](crate::TimelineBuilder::finding_rules).
///
/// # Defaults and why
///
/// - [`min_repeats`](Self::min_repeats) is **2**: a timeline is one request,
///   looked at in a test or an error report, and a statement issued twice
///   is already the pattern that grows with the data — what Launchpad's
///   repeated-statement report, prosopite and django-zeal flag by default.
///   Monitoring that samples production traffic wants fewer, larger
///   findings: Sentry's N+1 detector asks for about five repeats and 50 ms.
/// - [`min_total`](Self::min_total) is **zero**: in tests the database is
///   small and fast, so time says nothing about the loop; the count does.
/// - **Connection set-up** (category `SQL-connect`: opening a connection
///   and the statements a driver runs to set it up) makes no finding: a
///   pool opens connections when it needs them, so how many a request
///   opened says nothing about its code. See
///   [`include_connection_set_up`](Self::include_connection_set_up).
///
/// ```
/// use std::time::Duration;
/// use timeline_core::{FindingRules, Timeline};
///
/// let rules = FindingRules::new()
///     .min_repeats(5)
///     .min_total(Duration::from_millis(50))
///     .allow_statement("SELECT * FROM settings WHERE key = 'x'")
///     .allow_call_site("src/cache.rs");
/// let timeline = Timeline::builder().finding_rules(rules).build();
/// for id in 0..3 {
///     timeline.start("SQL-main", format!("SELECT * FROM bug WHERE id = {id}")).unwrap().finish();
/// }
/// assert!(timeline.summary().findings().is_empty(), "3 repeats < 5");
/// ```
#[derive(Clone)]
pub struct FindingRules {
    min_repeats: u64,
    min_total: Duration,
    statements: Vec<String>,
    call_sites: Vec<String>,
    categories: Vec<String>,
    connection_set_up: bool,
    predicates: Vec<AllowPredicate>,
}

impl Default for FindingRules {
    fn default() -> Self {
        FindingRules {
            min_repeats: 2,
            min_total: Duration::ZERO,
            statements: Vec::new(),
            call_sites: Vec::new(),
            categories: Vec::new(),
            connection_set_up: false,
            predicates: Vec::new(),
        }
    }
}

impl fmt::Debug for FindingRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FindingRules")
            .field("min_repeats", &self.min_repeats)
            .field("min_total", &self.min_total)
            .field("statements", &self.statements)
            .field("call_sites", &self.call_sites)
            .field("categories", &self.categories)
            .field("connection_set_up", &self.connection_set_up)
            .field("predicates", &self.predicates.len())
            .finish()
    }
}

impl FindingRules {
    /// The defaults: at least 2 repeats, any total time, nothing allowed.
    ///
    /// ```
    /// use timeline_core::FindingRules;
    ///
    /// let rules = FindingRules::new();
    /// assert_eq!(rules.repeats_needed(), 2);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A statement is a finding only if issued at least this many times
    /// (default 2; 0 and 1 count as 2, since one action repeats nothing).
    ///
    /// ```
    /// use timeline_core::{FindingRules, Timeline};
    ///
    /// let timeline = Timeline::builder().finding_rules(FindingRules::new().min_repeats(3)).build();
    /// for id in [1, 2] {
    ///     timeline.start("SQL-main", format!("SELECT * FROM bug WHERE id = {id}")).unwrap().finish();
    /// }
    /// assert!(timeline.summary().findings().is_empty());
    /// ```
    pub fn min_repeats(mut self, repeats: u64) -> Self {
        self.min_repeats = repeats;
        self
    }

    /// How many repeats make a finding, after the floor of 2.
    ///
    /// ```
    /// use timeline_core::FindingRules;
    ///
    /// assert_eq!(FindingRules::new().min_repeats(0).repeats_needed(), 2);
    /// assert_eq!(FindingRules::new().min_repeats(7).repeats_needed(), 7);
    /// ```
    pub fn repeats_needed(&self) -> u64 {
        self.min_repeats.max(2)
    }

    /// A statement is a finding only if its actions took at least this
    /// long in all (default zero).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use timeline_core::{FindingRules, Timeline};
    ///
    /// let rules = FindingRules::new().min_total(Duration::from_millis(50));
    /// let timeline = Timeline::builder().finding_rules(rules).build();
    /// for id in [1, 2] {
    ///     let detail = format!("SELECT * FROM bug WHERE id = {id}");
    ///     timeline.record("SQL-main", detail, Instant::now(), Duration::from_millis(1));
    /// }
    /// assert!(timeline.summary().findings().is_empty());
    /// ```
    pub fn min_total(mut self, total: Duration) -> Self {
        self.min_total = total;
        self
    }

    /// Allow the statements that contain `pattern`, once both are
    /// normalised: `"FROM settings"` allows every statement reading the
    /// settings table, `"SELECT * FROM t WHERE id = 1"` that statement with
    /// any id. For a known, accepted repeat.
    ///
    /// ```
    /// use timeline_core::{FindingRules, Timeline};
    ///
    /// let rules = FindingRules::new().allow_statement("from Settings where key = 'theme'");
    /// let timeline = Timeline::builder().finding_rules(rules).build();
    /// for key in ["theme", "locale"] {
    ///     let detail = format!("SELECT value FROM settings WHERE key = '{key}'");
    ///     timeline.start("SQL-main", detail).unwrap().finish();
    /// }
    /// assert!(timeline.summary().findings().is_empty());
    /// ```
    pub fn allow_statement(mut self, pattern: impl AsRef<str>) -> Self {
        let pattern = normalise(pattern.as_ref());
        if !pattern.is_empty() {
            self.statements.push(pattern);
        }
        self
    }

    /// Leave out the actions issued from a source file whose path contains
    /// `path` (`"src/cache.rs"`, `"src/admin/"`): code whose repeats are
    /// known and accepted. Actions whose call site is unknown are not left
    /// out.
    ///
    /// ```
    /// use timeline_core::FindingRules;
    ///
    /// let rules = FindingRules::new().allow_call_site("src/admin/");
    /// assert!(format!("{rules:?}").contains("src/admin/"));
    /// ```
    pub fn allow_call_site(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        if !path.is_empty() {
            self.call_sites.push(path);
        }
        self
    }

    /// Leave out the actions of `category` (the whole name, `"SQL-replica"`):
    /// a category whose repeats are expected.
    ///
    /// ```
    /// use timeline_core::{FindingRules, Timeline};
    ///
    /// let rules = FindingRules::new().allow_category("memcache-get");
    /// let timeline = Timeline::builder().finding_rules(rules).build();
    /// for key in ["user:1", "user:2"] {
    ///     timeline.start("memcache-get", key).unwrap().finish();
    /// }
    /// assert!(timeline.summary().findings().is_empty());
    /// ```
    pub fn allow_category(mut self, category: impl Into<String>) -> Self {
        self.categories.push(category.into());
        self
    }

    /// Whether connection set-up — the actions of category `SQL-connect`,
    /// which the diesel instrumentation and the sqlx preset give to opening
    /// a connection and to the statements the driver runs to set it up —
    /// may make findings (default `false`). A pool opens a connection when
    /// it needs one, not when the code asks twice for the same thing.
    ///
    /// ```
    /// use timeline_core::{FindingRules, Timeline};
    ///
    /// let connect_twice = |rules: FindingRules| {
    ///     let timeline = Timeline::builder().finding_rules(rules).build();
    ///     for _ in 0..2 {
    ///         timeline.start("SQL-connect", "PRAGMA foreign_keys = ON; ").unwrap().finish();
    ///     }
    ///     timeline.summary().findings().len()
    /// };
    /// assert_eq!(connect_twice(FindingRules::new()), 0);
    /// assert_eq!(connect_twice(FindingRules::new().include_connection_set_up(true)), 1);
    /// ```
    pub fn include_connection_set_up(mut self, include: bool) -> Self {
        self.connection_set_up = include;
        self
    }

    /// Allow the findings for which `predicate` returns `true`. It runs
    /// while a summary or report is made, without any lock held; if it
    /// panics, the finding is kept; if it makes a summary itself, the
    /// predicates do not run for that inner summary (no recursion).
    ///
    /// ```
    /// use timeline_core::{FindingKind, FindingRules, Timeline};
    ///
    /// let rules = FindingRules::new().allow_if(|f| f.kind() == FindingKind::Duplicate);
    /// let timeline = Timeline::builder().finding_rules(rules).build();
    /// for _ in 0..2 {
    ///     timeline.start("SQL-main", "SELECT * FROM config").unwrap().finish();
    /// }
    /// assert!(timeline.summary().findings().is_empty());
    /// ```
    pub fn allow_if(
        mut self,
        predicate: impl Fn(&Finding) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicates.push(Arc::new(predicate));
        self
    }

    pub(super) fn allows_call_site(&self, site: &CallSite<'_>) -> bool {
        self.call_sites
            .iter()
            .any(|path| site.file().contains(path.as_str()))
    }

    /// Whether the actions of `category` make no findings.
    pub(super) fn leaves_out_category(&self, category: &str) -> bool {
        (!self.connection_set_up && super::is_connection_set_up(category))
            || self.categories.iter().any(|c| c == category)
    }

    pub(super) fn allows_statement(&self, statement: &str) -> bool {
        self.statements
            .iter()
            .any(|pattern| statement.contains(pattern.as_str()))
    }

    /// The least total time a finding needs.
    pub(super) fn total_needed(&self) -> Duration {
        self.min_total
    }

    /// Whether any `allow_if` predicate was given.
    pub(super) fn has_predicates(&self) -> bool {
        !self.predicates.is_empty()
    }

    /// Whether a predicate allows `finding`: user code, run without a lock,
    /// its panics contained, and not at all from inside another predicate.
    pub(super) fn allowed_by_predicates(&self, finding: &Finding) -> bool {
        if IN_PREDICATE.with(Cell::get) {
            return false;
        }
        IN_PREDICATE.with(|flag| flag.set(true));
        let allowed = self.predicates.iter().any(|predicate| {
            catch_unwind(AssertUnwindSafe(|| predicate(finding))).unwrap_or(false)
        });
        IN_PREDICATE.with(|flag| flag.set(false));
        allowed
    }
}
