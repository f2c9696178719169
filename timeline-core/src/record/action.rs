//! What a timeline stores: actions, their outcome, and the flat OOPS form.

use std::borrow::Cow;
use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

/// How an action ended.
///
/// An action that has not finished yet reports [`Outcome::Ok`] and a
/// [`duration`](Action::duration) of `None`.
///
/// ```
/// use timeline_core::{Outcome, Timeline};
///
/// let timeline = Timeline::new();
/// let guard = timeline.start("SQL-main", "SELECT 1").unwrap();
/// guard.finish_with(Outcome::Error("disk I/O error".into()));
/// assert_eq!(
///     timeline.actions()[0].outcome(),
///     &Outcome::Error("disk I/O error".into())
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The action completed (or is still running).
    #[default]
    Ok,
    /// The action completed with an error, described by the message.
    Error(String),
    /// The guard was dropped while its thread was panicking.
    Panicked,
    /// The action's future was dropped before it completed.
    Cancelled,
    /// The action ended, but its source does not say whether it succeeded:
    /// sqlx's query event carries no error, tower-http and the AWS SDK
    /// report failures in events of their own, a span closed before its
    /// source recorded a result. Never shown as a success: a timeline
    /// claims only what happened.
    ///
    /// ```
    /// use timeline_core::{Outcome, Timeline};
    ///
    /// let timeline = Timeline::new();
    /// let guard = timeline.start("SQL-main", "INSERT INTO bug VALUES (1)").unwrap();
    /// guard.finish_with(Outcome::NotReported);
    /// let report = timeline.report();
    /// assert_eq!(report.actions()[0].outcome().to_string(), "not reported");
    /// assert!(report.to_json().contains(r#""outcome":"not_reported","error":null"#));
    /// ```
    NotReported,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::Error(message) => write!(f, "error: {message}"),
            Outcome::Panicked => f.write_str("panicked"),
            Outcome::Cancelled => f.write_str("cancelled"),
            Outcome::NotReported => f.write_str("not reported"),
        }
    }
}

/// One entry of the flat OOPS form of a timeline, compatible with
/// python-oops-timeline: `(start_ms, end_ms, category, detail, backtrace)`.
///
/// Milliseconds are whole milliseconds from the timeline's start, floored;
/// `end_ms` is `start_ms` plus the floored duration.
///
/// ```
/// use std::time::{Duration, Instant};
/// use timeline_core::Timeline;
///
/// let timeline = Timeline::new();
/// timeline.record("SQL-main", "SELECT 1", Instant::now(), Duration::from_millis(3));
/// let tuple = &timeline.log_tuples()[0];
/// assert_eq!(tuple.end_ms - tuple.start_ms, 3);
/// assert_eq!(tuple.category, "SQL-main");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LogTuple {
    /// Whole milliseconds from the timeline's start to the action's start.
    pub start_ms: u64,
    /// `start_ms` plus the whole milliseconds of the action's duration.
    pub end_ms: u64,
    /// The action's category, e.g. `SQL-main`; nesting actions appear as a
    /// `…-start` and a `…-stop` entry.
    pub category: String,
    /// The action's detail, e.g. the SQL statement.
    pub detail: String,
    /// The backtrace captured when the action started, if enabled.
    pub backtrace: Option<String>,
}

/// A snapshot of one action of a timeline, as returned by
/// [`Timeline::actions`](crate::Timeline::actions).
///
/// ```
/// use timeline_core::Timeline;
///
/// let timeline = Timeline::new();
/// timeline.start("cache-get", "user:42").unwrap().finish();
/// let action = &timeline.actions()[0];
/// assert_eq!(action.category(), "cache-get");
/// assert_eq!(action.detail(), "user:42");
/// assert!(action.duration().is_some());
/// assert!(!action.is_nested());
/// ```
#[derive(Clone, Debug)]
pub struct Action {
    /// As in the slot: the category, unless `extra` holds it.
    pub(super) static_category: &'static str,
    pub(super) detail: Cow<'static, str>,
    pub(super) start_ns: u64,
    /// The duration, or for an unfinished action the time from its start to
    /// the snapshot: its log tuple ends there.
    pub(super) duration_ns: u64,
    pub(super) finished: bool,
    pub(super) nested: bool,
    pub(super) concurrent: bool,
    pub(super) call_site: Option<&'static Location<'static>>,
    pub(super) extra: Option<Arc<Extra>>,
}

/// What an action holds besides a static category, its detail and its
/// times: an owned category, an outcome other than `Ok`, a backtrace.
#[derive(Clone, Debug)]
pub(super) struct Extra {
    pub(super) category: Cow<'static, str>,
    pub(super) outcome: Outcome,
    pub(super) backtrace: Option<Arc<str>>,
}

impl Action {
    /// The detail as stored: a static one borrowed, an owned one cloned.
    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    pub(crate) fn detail_cow(&self) -> Cow<'static, str> {
        self.detail.clone()
    }

    /// Nanoseconds from the timeline's start to the action's start.
    pub(crate) fn start_ns(&self) -> u64 {
        self.start_ns
    }

    /// Nanoseconds from the timeline's start to the action's end (for an
    /// unfinished one, to the snapshot).
    pub(crate) fn end_ns(&self) -> u64 {
        self.start_ns.saturating_add(self.duration_ns)
    }

    /// The call site stored when the action started, if any: not one
    /// worked out from a backtrace.
    pub(crate) fn stored_call_site(&self) -> Option<&'static Location<'static>> {
        self.call_site
    }

    /// The category, e.g. `SQL-main` or `memcache-get`.
    pub fn category(&self) -> &str {
        self.extra
            .as_ref()
            .map_or(self.static_category, |extra| &extra.category)
    }

    /// The detail, e.g. the SQL statement, after the timeline's detail filter
    /// and length limit.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The category as stored: a static one borrowed, an owned one cloned.
    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    pub(crate) fn category_cow(&self) -> Cow<'static, str> {
        match &self.extra {
            None => Cow::Borrowed(self.static_category),
            Some(extra) => extra.category.clone(),
        }
    }

    /// Offset of the action's start from the timeline's start.
    pub fn start(&self) -> Duration {
        Duration::from_nanos(self.start_ns)
    }

    /// How long the action took; `None` while it is unfinished.
    pub fn duration(&self) -> Option<Duration> {
        self.finished
            .then(|| Duration::from_nanos(self.duration_ns))
    }

    /// Whether the action was started with
    /// [`start_nested`](crate::Timeline::start_nested) and so may contain
    /// other actions.
    pub fn is_nested(&self) -> bool {
        self.nested
    }

    /// Whether the action was stored although it overlapped an unfinished
    /// non-nesting action — `#[timed]` functions polled together with
    /// `join!`, queries a bridge saw run side by side, a
    /// [`record`](crate::Timeline::record)ed interval over a running action.
    /// Such an action is counted like any other, drawn on a lane of its own,
    /// and the overlap is also noted as a [`Violation`](crate::Violation).
    ///
    /// ```
    /// use timeline_core::{timed, Timeline};
    ///
    /// #[timed(category = "SQL-main", detail = "SELECT 2")]
    /// fn inner_query() {}
    ///
    /// let timeline = Timeline::new();
    /// timeline.scope(|| {
    ///     let _outer = timeline.start("SQL-main", "SELECT 1").unwrap();
    ///     inner_query(); // overlaps SELECT 1: stored, as concurrent
    /// });
    /// let actions = timeline.actions();
    /// assert_eq!(actions.len(), 2);
    /// assert!(!actions[0].is_concurrent() && actions[1].is_concurrent());
    /// assert_eq!(timeline.violations().len(), 1);
    /// ```
    pub fn is_concurrent(&self) -> bool {
        self.concurrent
    }

    /// The backtrace captured when the action started (or, for one a
    /// bridge recorded when it ended, then), if the timeline was built
    /// with [`capture_backtraces`](crate::TimelineBuilder::capture_backtraces):
    /// the application's own frames only, innermost first. `None` when no
    /// frame was the application's — a driver's own thread — rather than
    /// frames of the dependencies.
    pub fn backtrace(&self) -> Option<&str> {
        self.extra.as_ref()?.backtrace.as_deref()
    }

    /// Where the action came from: the source location of the code that
    /// called [`start`](crate::Timeline::start),
    /// [`start_nested`](crate::Timeline::start_nested) or
    /// [`record`](crate::Timeline::record), or of the `#[timed]` attribute
    /// of the function.
    /// Known for free, without a backtrace.
    ///
    /// An action recorded by a bridge (the `tracing` layer, diesel) comes
    /// from a library's code, which cannot tell the application's caller:
    /// its call site is `None`, unless the timeline captures backtraces
    /// ([`capture_backtraces`](crate::TimelineBuilder::capture_backtraces),
    /// [`capture_backtraces_if`](crate::TimelineBuilder::capture_backtraces_if),
    /// and always in [`testing`](crate::testing)), in which case it is the
    /// first application frame of the [`backtrace`](Self::backtrace) taken
    /// on the thread that recorded the action: the line that awaited the
    /// query or called diesel. A driver that runs the statement on a thread
    /// of its own (sqlx's SQLite worker) leaves no application frame to
    /// find: then the call site is not reported, rather than a wrong one —
    /// unless the application named the line with
    /// [`with_call_site`](crate::WithCallSite::with_call_site), which takes
    /// precedence over any backtrace.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// let line = line!() + 1;
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// let actions = timeline.actions();
    /// let call_site = actions[0].call_site().unwrap();
    /// assert_eq!(call_site.file(), file!());
    /// assert_eq!(call_site.line(), line);
    /// ```
    pub fn call_site(&self) -> Option<CallSite<'_>> {
        match self.call_site {
            Some(location) => Some(CallSite::from(location)),
            None => self.backtrace().and_then(CallSite::first_in_backtrace),
        }
    }

    /// How the action ended.
    pub fn outcome(&self) -> &Outcome {
        self.extra
            .as_ref()
            .map_or(&Outcome::Ok, |extra| &extra.outcome)
    }

    /// The duration, or for an unfinished action the time from its start to
    /// the moment the snapshot was taken.
    pub fn duration_or_elapsed(&self) -> Duration {
        Duration::from_nanos(self.duration_ns)
    }

    /// The action's end offset: start plus
    /// [`duration_or_elapsed`](Self::duration_or_elapsed).
    pub fn end(&self) -> Duration {
        Duration::from_nanos(self.start_ns.saturating_add(self.duration_ns))
    }

    /// The action as one OOPS log tuple. An unfinished action ends "now" (at
    /// the snapshot). A nesting action gives one tuple spanning its children;
    /// [`Timeline::log_tuples`](crate::Timeline::log_tuples) gives the
    /// `-start`/`-stop` markers instead.
    pub fn log_tuple(&self) -> LogTuple {
        let start_ms = whole_millis(self.start());
        LogTuple {
            start_ms,
            end_ms: start_ms.saturating_add(whole_millis(self.duration_or_elapsed())),
            category: self.category().to_owned(),
            detail: self.detail().to_owned(),
            backtrace: self.backtrace().map(str::to_owned),
        }
    }
}

/// Actions built as plain data, for tests of the readers.
#[cfg(test)]
impl Action {
    /// A finished, sequential, successful action.
    pub(crate) fn finished(
        category: &'static str,
        detail: &'static str,
        start: Duration,
        duration: Duration,
    ) -> Action {
        Action {
            static_category: category,
            detail: Cow::Borrowed(detail),
            start_ns: crate::clock::saturating_nanos(start),
            duration_ns: crate::clock::saturating_nanos(duration),
            finished: true,
            nested: false,
            concurrent: false,
            call_site: None,
            extra: None,
        }
    }

    /// The action, stored beside the sequence or not.
    pub(crate) fn concurrent(mut self, concurrent: bool) -> Action {
        self.concurrent = concurrent;
        self
    }
}

pub(crate) fn whole_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A source location an action came from: see [`Action::call_site`].
/// Displays as `file:line:column`.
///
/// A call site worked out from a backtrace also names the application's
/// [`function`](Self::function). In a build without line tables that is
/// all it knows: [`file`](Self::file) is empty, [`line`](Self::line) and
/// [`column`](Self::column) are 0, and it displays as the function.
///
/// ```
/// use timeline_core::Timeline;
///
/// let timeline = Timeline::new();
/// timeline.start("cache-get", "user:42").unwrap().finish();
/// let actions = timeline.actions();
/// let call_site = actions[0].call_site().unwrap();
/// assert!(call_site.to_string().starts_with(file!()));
/// assert_eq!(call_site.function(), None); // known without a backtrace
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallSite<'a> {
    file: &'a str,
    line: u32,
    column: u32,
    function: Option<&'a str>,
}

impl<'a> CallSite<'a> {
    /// The source file, as the compiler named it (relative to the package
    /// for the application's own code); empty when only the
    /// [`function`](Self::function) is known.
    pub fn file(&self) -> &'a str {
        self.file
    }

    /// The line, from 1; 0 when only the [`function`](Self::function) is
    /// known.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The column, from 1; 0 when only the [`function`](Self::function) is
    /// known.
    pub fn column(&self) -> u32 {
        self.column
    }

    /// The application's function, as the backtrace names it
    /// (`app::pages::bug_page::{{closure}}`), for a call site worked out
    /// from a backtrace; `None` for one known at the start of the action.
    pub fn function(&self) -> Option<&'a str> {
        self.function
    }

    /// Whether a file and line are known, not only the function.
    pub fn has_location(&self) -> bool {
        !self.file.is_empty()
    }

    /// The first frame of a backtrace cut to the application's frames, if
    /// it has one: a bridge called on a driver's own thread (sqlx's SQLite
    /// worker) has none, and then no call site.
    pub(super) fn first_in_backtrace(backtrace: &'a str) -> Option<Self> {
        let (function, location) = crate::backtrace::first_frame(backtrace)?;
        let located = location.and_then(|at| {
            let (rest, column) = at.rsplit_once(':')?;
            let (file, line) = rest.rsplit_once(':')?;
            // `./src/page.rs` as `src/page.rs`, the form of `file!()`.
            let file = file.strip_prefix("./").unwrap_or(file);
            Some((file, line.parse().ok()?, column.parse().ok()?))
        });
        let (file, line, column) = located.unwrap_or(("", 0, 0));
        Some(CallSite {
            file,
            line,
            column,
            function: Some(function),
        })
    }

    /// A call site from its parts, for readers that keep one apart from
    /// its action (a finding's call sites).
    pub(crate) fn from_parts(
        file: &'a str,
        line: u32,
        column: u32,
        function: Option<&'a str>,
    ) -> Self {
        CallSite {
            file,
            line,
            column,
            function,
        }
    }
}

impl From<&'static Location<'static>> for CallSite<'static> {
    fn from(location: &'static Location<'static>) -> Self {
        CallSite {
            file: location.file(),
            line: location.line(),
            column: location.column(),
            function: None,
        }
    }
}

impl fmt::Display for CallSite<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.function {
            Some(function) if self.file.is_empty() => f.write_str(function),
            _ => write!(f, "{}:{}:{}", self.file, self.line, self.column),
        }
    }
}
