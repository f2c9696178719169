//! The timeline: a shared, append-only record of one request's actions.
//! The handle's public methods, and the few crate-private ones through
//! which the rest of the crate records (see the module above).

use std::borrow::Cow;
use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::action::{Action, LogTuple, Outcome};
use super::builder::TimelineBuilder;
use super::detail;
use super::guard::ActionGuard;
use super::slots::UNFINISHED;
use super::snapshot::Snapshot;
use super::state::{CallCover, Inner, OnOverlap, RecordedBy, Started};
use crate::clock::saturating_nanos;
use crate::overlap::{OverlapError, Violation};
use crate::trace_context::{TraceContext, TraceId};

/// The record of actions of one request: where did its time go?
///
/// A `Timeline` is a cheap, shared handle (cloning it clones an `Arc`); every
/// clone records onto the same timeline, from any thread.
///
/// Actions do not overlap: [`start`](Self::start) is refused while a
/// non-nesting action is unfinished, so the timeline reads as a sequence.
/// A nesting action ([`start_nested`](Self::start_nested)) may contain
/// others, one at a time.
///
/// ```
/// use timeline_core::Timeline;
///
/// let timeline = Timeline::new();
/// {
///     let _query = timeline.start("SQL-main", "SELECT * FROM bug WHERE id = 1").unwrap();
///     // ... run the query; dropping the guard finishes the action
/// }
/// timeline.start("memcache-get", "bug:1").unwrap().finish();
///
/// let actions = timeline.actions();
/// assert_eq!(actions.len(), 2);
/// assert_eq!(actions[0].category(), "SQL-main");
/// assert_eq!(actions[1].detail(), "bug:1");
/// ```
#[derive(Clone)]
pub struct Timeline {
    pub(super) inner: Arc<Inner>,
}

// A panic never leaves a timeline inconsistent: no user code runs while its
// lock is held, and every update under the lock is complete.
impl std::panic::UnwindSafe for Timeline {}
impl std::panic::RefUnwindSafe for Timeline {}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new()
    }
}

impl fmt::Debug for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Read, then let go of the lock: the formatter writes to the
        // caller's writer, which may be code that records onto this timeline.
        let (actions, dropped, violations) = {
            let state = self.inner.lock();
            (state.slots.len(), state.dropped, state.violations.len())
        };
        f.debug_struct("Timeline")
            .field("baseline", &self.inner.clock.baseline_wall())
            .field("actions", &actions)
            .field("dropped", &dropped)
            .field("violations", &violations)
            .finish_non_exhaustive()
    }
}

impl Timeline {
    /// A new, empty timeline starting now, with the default settings.
    pub fn new() -> Timeline {
        TimelineBuilder::default().build()
    }

    /// A builder for a timeline with other settings than the defaults.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::builder()
    ///     .max_actions(1_000)
    ///     .detail_filter(|sql| sql.replace("hunter2", "<redacted>"))
    ///     .build();
    /// timeline.start("SQL-main", "SELECT * FROM users WHERE password = 'hunter2'").unwrap();
    /// # drop(timeline.actions());
    /// assert!(timeline.actions()[0].detail().contains("<redacted>"));
    /// ```
    pub fn builder() -> TimelineBuilder {
        TimelineBuilder::default()
    }

    /// Whether `a` and `b` are handles to the same timeline.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let a = Timeline::new();
    /// assert!(Timeline::ptr_eq(&a, &a.clone()));
    /// assert!(!Timeline::ptr_eq(&a, &Timeline::new()));
    /// ```
    pub fn ptr_eq(a: &Timeline, b: &Timeline) -> bool {
        Arc::ptr_eq(&a.inner, &b.inner)
    }

    /// Starts a timed action, finished when the returned guard is dropped (or
    /// [`finish`](ActionGuard::finish)ed).
    ///
    /// Refused with an [`OverlapError`] while a non-nesting action of this
    /// timeline is unfinished, whatever thread started it.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// let guard = timeline.start("SQL-main", "SELECT 1").unwrap();
    /// assert!(timeline.start("SQL-main", "SELECT 2").is_err());
    /// drop(guard);
    /// assert!(timeline.start("SQL-main", "SELECT 2").is_ok());
    /// ```
    #[inline]
    #[track_caller]
    pub fn start(
        &self,
        category: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Result<ActionGuard, OverlapError> {
        let call_site = Some(Location::caller());
        self.try_start(
            category.into(),
            detail.into(),
            false,
            OnOverlap::Refuse,
            call_site,
        )
        .map(|started| started.guard(self))
    }

    /// Starts a nesting action: while it is unfinished, other actions may
    /// start inside it, one at a time (a nesting child opens a new level).
    ///
    /// In [`log_tuples`](Self::log_tuples) it appears as a `…-start` and a
    /// `…-stop` marker around its children.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// let transaction = timeline.start_nested("SQL-main", "transaction").unwrap();
    /// timeline.start("SQL-main", "INSERT INTO bug VALUES (1)").unwrap().finish();
    /// timeline.start("SQL-main", "INSERT INTO bug VALUES (2)").unwrap().finish();
    /// transaction.finish();
    ///
    /// let categories: Vec<String> = timeline.log_tuples().into_iter().map(|t| t.category).collect();
    /// assert_eq!(categories, ["SQL-main-start", "SQL-main", "SQL-main", "SQL-main-stop"]);
    /// ```
    #[inline]
    #[track_caller]
    pub fn start_nested(
        &self,
        category: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Result<ActionGuard, OverlapError> {
        let call_site = Some(Location::caller());
        self.try_start(
            category.into(),
            detail.into(),
            true,
            OnOverlap::Refuse,
            call_site,
        )
        .map(|started| started.guard(self))
    }

    /// Starts an action that is never refused, for code that cannot handle
    /// an [`OverlapError`] (`#[timed]`, the bridges): overlapping an
    /// unfinished non-nesting action, it is stored as
    /// [concurrent](Action::is_concurrent) and the overlap is noted as a
    /// [`Violation`].
    #[inline]
    #[cfg_attr(
        not(any(
            all(feature = "tower", feature = "tracing"),
            feature = "diesel",
            feature = "reqwest-middleware"
        )),
        allow(dead_code)
    )]
    pub(crate) fn start_unrefused(
        &self,
        category: Cow<'static, str>,
        detail: Cow<'static, str>,
        nested: bool,
    ) -> ActionGuard {
        if self.inner.settle.is_sealed() {
            return self.late_guard();
        }
        // A bridge is called from a library's code, not the application's:
        // where it was called from only the application can say
        // (`with_call_site`), or a backtrace tell.
        let call_site = crate::call_site::scoped();
        match self.try_start(category, detail, nested, OnOverlap::Concurrent, call_site) {
            Ok(started) => started.guard(self),
            Err(_) => unreachable!("a start that may be concurrent is never refused"),
        }
    }

    /// Stores the start of an action, for the caller to wrap in a guard
    /// that holds a handle to `self`. Inlined into every caller, where the
    /// strings' kind is known, to pick one of two paths kept out of line.
    #[inline(always)]
    pub(super) fn try_start(
        &self,
        category: Cow<'static, str>,
        detail: Cow<'static, str>,
        nested: bool,
        on_overlap: OnOverlap,
        call_site: Option<&'static Location<'static>>,
    ) -> Result<Started, OverlapError> {
        let inner = &*self.inner;
        // The common case — static strings stored as they are — skips the
        // general path, where moving the two `Cow`s from step to step cost
        // more than the rest of the start: a 24-byte value written a field
        // at a time and copied 16 bytes at a time waits for the writes to
        // reach the cache instead of being forwarded.
        if let (Cow::Borrowed(category), Cow::Borrowed(detail)) = (&category, &detail) {
            let mut refused = None;
            let started = inner.start_static(
                category,
                detail,
                nested,
                on_overlap,
                call_site,
                &mut refused,
            );
            return match refused {
                None => Ok(started),
                Some(error) => Err(error),
            };
        }
        inner.start_general(category, detail, nested, on_overlap, call_site)
    }

    /// Adds a finished action after the fact, e.g. from a callback that
    /// reports a statement's duration once it ran (SQLite's profile hook).
    ///
    /// Never refused, whatever is open: an interval that overlaps an
    /// unfinished non-nesting action, or the last finished one, is stored as
    /// [concurrent](Action::is_concurrent) and the overlap is noted as a
    /// [`Violation`]. A `started` before the timeline's start is clamped to
    /// its start.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// let _open = timeline.start("HTTP-get", "/api").unwrap();
    /// timeline.record("SQL-main", "SELECT 1", Instant::now(), Duration::from_micros(250));
    /// assert_eq!(timeline.len(), 2);
    /// assert!(timeline.actions()[1].is_concurrent());
    /// ```
    #[track_caller]
    pub fn record(
        &self,
        category: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
        started: Instant,
        duration: Duration,
    ) {
        // An `Instant` from before the timeline clamps to its start; one
        // centuries ahead saturates below the end, so the end never comes
        // before the start.
        let start_ns = self.inner.clock.offset_ns(started).min(UNFINISHED - 1);
        let end_ns = start_ns
            .saturating_add(saturating_nanos(duration))
            .min(UNFINISHED - 1);
        self.inner.push_recorded(
            category.into(),
            detail.into(),
            start_ns,
            end_ns,
            Outcome::Ok,
            RecordedBy::Caller(Location::caller()),
        );
    }

    /// Adds an action that ended now after running for `duration`: what a
    /// bridge learns from an event such as sqlx's, which fires when its
    /// query finished. Never refused, like [`record`](Self::record).
    #[cfg_attr(not(all(feature = "tower", feature = "tracing")), allow(dead_code))] // the bridge's
    pub(crate) fn record_ended_now(
        &self,
        category: Cow<'static, str>,
        detail: Cow<'static, str>,
        duration: Duration,
        outcome: Outcome,
    ) {
        if self.inner.settle.is_sealed() {
            self.inner.settle.count_late();
            return;
        }
        let end_ns = self.inner.clock.now_ns().min(UNFINISHED - 1);
        let start_ns = end_ns.saturating_sub(saturating_nanos(duration));
        self.inner.push_recorded(
            category,
            detail,
            start_ns,
            end_ns,
            outcome,
            // As in `start_unrefused`: the application's own word, if any.
            RecordedBy::Bridge(crate::call_site::scoped()),
        );
    }

    /// The guard of an action that came after the timeline was sealed:
    /// counted as late, stored nowhere, and finishing it does nothing.
    #[cold]
    fn late_guard(&self) -> ActionGuard {
        self.inner.settle.count_late();
        Started::not_stored(self.inner.clock.now_ns()).guard(self)
    }

    /// A snapshot of the stored actions, in start order. A nesting action
    /// appears once, with its full duration.
    pub fn actions(&self) -> Vec<Action> {
        let as_of = self.inner.report_now_ns();
        let state = self.inner.lock();
        state.actions(as_of)
    }

    /// The timeline in the flat OOPS form of python-oops-timeline: one tuple
    /// per action in start order; a nesting action as a zero-length
    /// `…-start` tuple at its start and, once finished, a `…-stop` tuple at
    /// its end, with its children between them. Unfinished actions end now.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// let _in_flight = timeline.start("SQL-main", "SELECT pg_sleep(10)").unwrap();
    /// let tuples = timeline.log_tuples();
    /// assert_eq!(tuples[0].detail, "SELECT pg_sleep(10)");
    /// assert!(tuples[0].end_ms >= tuples[0].start_ms);
    /// ```
    pub fn log_tuples(&self) -> Vec<LogTuple> {
        self.snapshot().log_tuples()
    }

    /// How many actions are stored (at most
    /// [`max_actions`](TimelineBuilder::max_actions)).
    pub fn len(&self) -> usize {
        self.inner.lock().slots.len()
    }

    /// Whether no action is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many actions were not stored because the timeline already held
    /// [`max_actions`](TimelineBuilder::max_actions).
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::builder().max_actions(2).build();
    /// for _ in 0..5 {
    ///     timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// }
    /// assert_eq!((timeline.len(), timeline.dropped()), (2, 3));
    /// ```
    pub fn dropped(&self) -> u64 {
        self.inner.lock().dropped
    }

    /// The overlaps that `#[timed]`, the bridges and
    /// [`record`](Self::record) ran into, in the order they were noted: each
    /// names the unfinished action and the [concurrent](Action::is_concurrent)
    /// one stored beside it.
    pub fn violations(&self) -> Vec<Violation> {
        self.inner.lock().violations.clone()
    }

    /// How many actions arrived from the `tracing` bridge or diesel after
    /// the request's report was made (the web layer's `RequestTimelineLayer`
    /// makes it once the work it waits for has ended): counted here
    /// instead of stored, so that the timeline keeps agreeing with the
    /// report, and never recorded on another request's timeline. Always 0
    /// on a timeline no web layer reported.
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// assert_eq!(timeline.late(), 0);
    /// assert_eq!(timeline.report().late(), 0);
    /// ```
    pub fn late(&self) -> u64 {
        self.inner.settle.late()
    }

    /// The wall-clock time at which the timeline started.
    pub fn baseline(&self) -> SystemTime {
        self.inner.clock.baseline_wall()
    }

    /// The time since the timeline started.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.inner.report_now_ns())
    }

    /// Everything a reader needs of the timeline as of now, as plain data
    /// taken under one lock: the actions, what was dropped, the
    /// violations, the pauses of findings and the trace context. Every
    /// report is made from one (see [`Snapshot`]).
    ///
    /// ```
    /// use timeline_core::Timeline;
    ///
    /// let timeline = Timeline::new();
    /// timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    /// let snapshot = timeline.snapshot();
    /// // The log line and the header of one moment, from one read.
    /// let line = snapshot.summary().to_string();
    /// let header = snapshot.server_timing();
    /// assert!(line.starts_with("1 queries") && header.starts_with("SQL-main"));
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        self.inner.snapshot()
    }

    /// Attaches the request's place in a distributed trace: reports name
    /// its trace id, outgoing calls carry it on (`traceparent`), and the
    /// `opentelemetry` export continues that trace. Returns `false` (and
    /// keeps the first) if the timeline already has one.
    ///
    /// The `tower` layer does this for each request when built with
    /// `trace_context(true)`.
    ///
    /// ```
    /// use timeline_core::{TraceContext, Timeline};
    ///
    /// let timeline = Timeline::new();
    /// assert!(timeline.trace_context().is_none());
    /// assert!(timeline.set_trace_context(TraceContext::new_trace(true)));
    /// assert!(!timeline.set_trace_context(TraceContext::new_trace(true)));
    /// let trace_id = timeline.trace_id().unwrap();
    /// assert!(timeline.summary().to_string().ends_with(&format!(", trace {trace_id}")));
    /// assert_eq!(timeline.report().trace_id(), Some(trace_id));
    /// ```
    pub fn set_trace_context(&self, context: TraceContext) -> bool {
        self.inner.trace_context.set(context).is_ok()
    }

    /// The request's place in a distributed trace, if one was attached.
    pub fn trace_context(&self) -> Option<TraceContext> {
        self.inner.trace_context.get().cloned()
    }

    /// The id of the distributed trace the request belongs to, if a
    /// [`TraceContext`] was attached.
    pub fn trace_id(&self) -> Option<TraceId> {
        self.inner.trace_context.get().map(TraceContext::trace_id)
    }
}

/// The crate-private surface through which `#[timed]`, the integrations
/// and the readers that need no snapshot record and read (see the module).
impl Timeline {
    /// Starts the action of a `#[timed]` call, on the handle `current()`
    /// gave, which the guard keeps: stored as concurrent on overlap, or on
    /// a strict timeline a panic.
    #[inline(always)]
    #[track_caller]
    pub(crate) fn start_for_timed(
        self,
        category: &'static str,
        detail: Cow<'static, str>,
        nested: bool,
    ) -> ActionGuard {
        let on_overlap = if self.inner.config.strict {
            OnOverlap::Refuse
        } else {
            OnOverlap::Concurrent
        };
        let call_site = Some(Location::caller());
        match self.try_start(
            Cow::Borrowed(category),
            detail,
            nested,
            on_overlap,
            call_site,
        ) {
            Ok(started) => started.into_guard(self),
            Err(error) => strict_overlap(error),
        }
    }

    /// [`start`](Self::start) with the call site given, or none.
    #[inline]
    pub(crate) fn start_at(
        &self,
        category: &'static str,
        detail: &'static str,
        call_site: Option<&'static Location<'static>>,
    ) -> Result<ActionGuard, OverlapError> {
        self.try_start(
            Cow::Borrowed(category),
            Cow::Borrowed(detail),
            false,
            OnOverlap::Refuse,
            call_site,
        )
        .map(|started| started.guard(self))
    }

    /// Adds an action with fixed timings, as given, whatever is open: for
    /// reproducible (golden) reports. `end_ns == None` leaves it
    /// unfinished.
    pub(crate) fn push_fixed(
        &self,
        category: Cow<'static, str>,
        detail: Cow<'static, str>,
        start: Duration,
        duration: Option<Duration>,
        nested: bool,
        outcome: Outcome,
    ) {
        let start_ns = saturating_nanos(start).min(UNFINISHED - 1);
        let end_ns = match duration {
            Some(duration) => start_ns
                .saturating_add(saturating_nanos(duration))
                .min(UNFINISHED - 1),
            None => UNFINISHED,
        };
        self.inner
            .push_finished(category, detail, start_ns, end_ns, nested, outcome);
    }

    /// The longest detail stored, in bytes: for a source that renders its
    /// text itself and can stop there.
    #[cfg_attr(not(feature = "diesel"), allow(dead_code))]
    pub(crate) fn max_detail_len(&self) -> usize {
        self.inner.config.max_detail_len
    }

    /// `text` as the timeline's detail filter lets it through, cut to the
    /// detail limit; `None` when the timeline has no filter.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn filter_detail(&self, text: String) -> Option<Cow<'static, str>> {
        let config = &self.inner.config;
        let filter = config.detail_filter.as_ref()?;
        Some(detail::prepare(
            Cow::Owned(text),
            Some(filter),
            config.max_detail_len,
        ))
    }

    /// The summary line's count without a summary: stored non-nesting
    /// actions plus the dropped ones.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn action_count(&self) -> u64 {
        self.inner.action_count()
    }

    /// The summary line's counts without a snapshot: actions (dropped
    /// included), concurrent ones, and the time to now.
    pub(crate) fn line_counts(&self) -> (u64, u64, Duration) {
        self.inner.line_counts()
    }

    /// Runs `f` over the category and duration of each non-nesting action
    /// (unfinished ones until now), without copying a detail, and returns
    /// what it made with the time from the timeline's start to now.
    pub(crate) fn with_timings<R>(
        &self,
        f: impl FnOnce(&mut dyn Iterator<Item = (&str, Duration)>) -> R,
    ) -> (R, Duration) {
        self.inner.with_timings(f)
    }

    /// What the timeline counts against its `max_bytes`.
    pub(crate) fn held_bytes(&self) -> usize {
        self.inner.held_bytes()
    }

    /// Work begins that may still record onto the timeline after the
    /// request's handler returned: a thread entered the request's span (a
    /// driver's worker). Paired with [`work_ends`](Self::work_ends).
    #[cfg_attr(not(all(feature = "tower", feature = "tracing")), allow(dead_code))]
    pub(crate) fn work_begins(&self) {
        self.inner.settle.work_begins();
    }

    /// The work of a [`work_begins`](Self::work_begins) ended; the last
    /// to end wakes whoever waits in [`poll_settled`](Self::poll_settled).
    #[cfg_attr(not(all(feature = "tower", feature = "tracing")), allow(dead_code))]
    pub(crate) fn work_ends(&self) {
        self.inner.settle.work_ends();
    }

    /// Whether no work is outstanding: one load.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn is_settled(&self) -> bool {
        self.inner.settle.is_settled()
    }

    /// Ready once no work is outstanding; else the waker of `cx` is woken
    /// when the last work ends. The caller bounds the wait.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn poll_settled(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.inner.settle.poll_settled(cx)
    }

    /// The report is being made: from now on, what the bridges bring
    /// (`start_unrefused`, `record_ended_now`, corrections of ended
    /// actions) is counted as [`late`](Self::late) instead of stored.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn seal(&self) {
        self.inner.seal();
    }

    /// What a call made now outside any guard belongs to, for
    /// `TraceContext::inject_current` and the reqwest middleware: the open
    /// non-nesting action, which becomes a call (its span id drawn at the
    /// first ask); the request, while concurrent actions make it unclear
    /// which action holds the call; or nothing, when no action is open or
    /// only one started for another call ([`start_call`](Self::start_call)).
    #[cfg_attr(
        not(any(feature = "tower", feature = "reqwest-middleware")),
        allow(dead_code)
    )]
    pub(crate) fn call_cover(&self) -> CallCover {
        self.inner.call_cover()
    }

    /// Starts an action that is one outgoing call and nothing else, never
    /// refused (concurrent on overlap), with its span id drawn now: a call
    /// made while it is open is another call, not part of it. Returns the
    /// trace context the call carries, if the timeline has one.
    #[cfg_attr(not(feature = "reqwest-middleware"), allow(dead_code))]
    pub(crate) fn start_call(
        &self,
        category: Cow<'static, str>,
        detail: Cow<'static, str>,
    ) -> (ActionGuard, Option<TraceContext>) {
        let guard = self.start_unrefused(category, detail, false);
        let span_id = self.inner.mark_call(guard.slot(), true);
        let context = self.inner.trace_context.get().map(|trace| match span_id {
            Some(span_id) => trace.for_call(span_id),
            None => trace.clone(),
        });
        (guard, context)
    }
}

/// What `#[timed]` does on a strict timeline when an action is open.
#[cold]
#[inline(never)]
fn strict_overlap(error: OverlapError) -> ! {
    panic!("#[timed] on a strict timeline: {error}");
}
