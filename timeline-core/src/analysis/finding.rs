//! What the N+1 detector reports: a finding, its kind and its call sites,
//! as plain data (made in `findings.rs`, judged by `rules.rs`).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use super::statement::RepeatedStatement;
use crate::CallSite;

/// The kind of a [`Finding`].
///
/// ```
/// use timeline_core::{FindingKind, Timeline};
///
/// let timeline = Timeline::new();
/// for id in [1, 2, 3] {
///     timeline.start("SQL-main", format!("SELECT * FROM bug WHERE id = {id}")).unwrap().finish();
/// }
/// for _ in 0..2 {
///     timeline.start("SQL-main", "SELECT * FROM config").unwrap().finish();
/// }
/// let summary = timeline.summary();
/// let kinds: Vec<FindingKind> = summary.findings().iter().map(|f| f.kind()).collect();
/// assert_eq!(kinds, [FindingKind::Similar, FindingKind::Duplicate]);
/// assert_eq!(FindingKind::Similar.to_string(), "similar");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FindingKind {
    /// The same statement once its values are replaced by placeholders,
    /// issued with different values (or with values the detail does not
    /// show, such as `$1` bound by the driver): a loop that issues one
    /// query per item, the N+1 signal. One query with an `IN` list would
    /// do.
    Similar,
    /// The very same statement, byte for byte, values included: the same
    /// data fetched again. Keep the first result instead.
    Duplicate,
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FindingKind::Similar => "similar",
            FindingKind::Duplicate => "duplicate",
        })
    }
}

/// Where actions of a [`Finding`] were issued from, and how many.
///
/// ```
/// use timeline_core::Timeline;
///
/// let timeline = Timeline::new();
/// for id in [1, 2] {
///     timeline.start("SQL-main", format!("SELECT * FROM bug WHERE id = {id}")).unwrap().finish();
/// }
/// let summary = timeline.summary();
/// for site in summary.findings()[0].call_sites() {
///     let call_site = site.call_site();
///     println!("{}:{} issued it {} times", call_site.file(), call_site.line(), site.count());
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindingSite {
    /// Borrowed from the binary for a call site known at the start of the
    /// action, copied from the backtrace for one worked out from it.
    pub(super) file: Cow<'static, str>,
    pub(super) line: u32,
    pub(super) column: u32,
    pub(super) function: Option<Box<str>>,
    pub(super) count: u64,
}

impl FindingSite {
    /// The call site that issued the actions: the line that called
    /// `start` or `record`, a `#[timed]` function, or for an action a
    /// bridge recorded, the first application frame of its backtrace (see
    /// [`Action::call_site`](crate::Action::call_site)).
    pub fn call_site(&self) -> CallSite<'_> {
        CallSite::from_parts(&self.file, self.line, self.column, self.function.as_deref())
    }

    /// The call site that issued the actions: the same as
    /// [`call_site`](Self::call_site).
    ///
    /// This returned a `&'static std::panic::Location` before call sites
    /// worked out from a backtrace (the bridges') could be findings' call
    /// sites too; `std` offers no way to make a `Location` of those. The
    /// [`CallSite`] it returns now has the same `file()`, `line()`,
    /// `column()` and `Display`.
    #[deprecated(
        since = "0.1.0",
        note = "use `call_site()`: a call site from a backtrace has no `std::panic::Location`"
    )]
    pub fn location(&self) -> CallSite<'_> {
        self.call_site()
    }

    /// How many of the finding's actions it issued.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// A repeated statement worth a look: one statement (within one category)
/// issued [`min_repeats`](crate::FindingRules::min_repeats) times or more, taking
/// [`min_total`](crate::FindingRules::min_total) or more in all, not allowed by the
/// timeline's [`FindingRules`](crate::FindingRules) and not issued during a
/// [pause](crate::Timeline::pause_findings).
///
/// ```
/// use timeline_core::{FindingKind, Timeline};
///
/// let timeline = Timeline::new();
/// for id in 1..=20 {
///     timeline.start("SQL-main", format!("SELECT * FROM person WHERE id = {id}")).unwrap().finish();
/// }
/// let summary = timeline.summary();
/// let finding = &summary.findings()[0];
/// assert_eq!(finding.kind(), FindingKind::Similar);
/// assert_eq!(finding.category(), "SQL-main");
/// assert_eq!(finding.statement(), "SELECT * FROM person WHERE id = ?");
/// assert_eq!(finding.count(), 20);
/// assert_eq!(finding.example(), "SELECT * FROM person WHERE id = 1");
/// assert!(finding.total() <= summary.duration());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub(super) kind: FindingKind,
    /// The statement, counted with pauses and allowed call sites left out.
    pub(super) repeated: RepeatedStatement,
    pub(super) call_sites: Vec<FindingSite>,
}

impl Finding {
    /// Similar (other values: N+1) or duplicate (the same values again).
    pub fn kind(&self) -> FindingKind {
        self.kind
    }

    /// The category of the actions, e.g. `SQL-main`.
    pub fn category(&self) -> &str {
        self.repeated.category()
    }

    /// The statement with its values replaced by placeholders (see the
    /// summary's [repeated statements](crate::Summary::repeated_statements)
    /// for the rules).
    pub fn statement(&self) -> &str {
        self.repeated.statement()
    }

    /// How many times it was issued, pauses and allowed call sites left
    /// out.
    pub fn count(&self) -> u64 {
        self.repeated.count()
    }

    /// Their time added up.
    pub fn total(&self) -> Duration {
        self.repeated.total()
    }

    /// One of the actual details, the first one issued.
    pub fn example(&self) -> &str {
        self.repeated.example()
    }

    /// Where the actions were issued from, most first; empty where no
    /// action knows its call site.
    pub fn call_sites(&self) -> &[FindingSite] {
        &self.call_sites
    }
}
