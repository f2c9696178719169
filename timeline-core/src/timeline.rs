//! The timeline: a shared, append-only record of one request's actions.

use std::borrow::Cow;
use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::action::{Action, LogTuple, Outcome, whole_millis};
use crate::clock::{Clock, saturating_nanos};
use crate::detail::{self, BacktracePredicate, DetailFilter};
use crate::error::{Named, OverlapError, Violation};
use crate::guard::ActionGuard;
use crate::report::{FindingRules, Pauses};
use crate::slots::{Placed, Slot, SlotTexts, Slots, StaticTexts, Texts, UNFINISHED};
use crate::sync::{AtomicU64, Mutex, MutexGuard, Ordering};

/// [`Inner::open_end`] while the open non-nesting action runs.
pub(crate) const RUNNING: u64 = u64::MAX;

/// The slot of an action that was counted in `dropped()` instead of stored.
pub(crate) const NOT_STORED: usize = usize::MAX;

/// The most actions a timeline stores, whatever `max_actions` says: a
/// guard keeps its slot's index in 32 bits (see [`Started`]).
pub(crate) const MAX_ACTIONS: usize = u32::MAX as usize - 1;

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
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) clock: Clock,
    pub(crate) config: Config,
    state: Mutex<State>,
    /// The end of the open non-nesting action, or [`RUNNING`]. Finishing
    /// that action — the common case — is this one store, without the lock;
    /// the next holder of the lock settles it into the action's slot.
    pub(crate) open_end: AtomicU64,
    /// Fixes "now" for reports of timelines built with fixed timings.
    frozen_now_ns: Option<u64>,
    /// When findings were paused ([`Timeline::pause_findings`]).
    pub(crate) pauses: Pauses,
    /// The request's place in a distributed trace (see `trace_context.rs`).
    pub(crate) trace_context: std::sync::OnceLock<crate::TraceContext>,
}

/// The default of [`TimelineBuilder::max_bytes`]: 16 MiB.
pub(crate) const DEFAULT_MAX_BYTES: usize = 16 << 20;

pub(crate) struct Config {
    pub(crate) backtraces: Backtraces,
    pub(crate) max_actions: usize,
    pub(crate) max_detail_len: usize,
    pub(crate) max_bytes: usize,
    pub(crate) detail_filter: Option<DetailFilter>,
    pub(crate) strict: bool,
    pub(crate) finding_rules: FindingRules,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backtraces: Backtraces::Never,
            max_actions: 100_000,
            max_detail_len: 65_536,
            max_bytes: DEFAULT_MAX_BYTES,
            detail_filter: None,
            strict: false,
            finding_rules: FindingRules::default(),
        }
    }
}

/// Which actions get a backtrace.
pub(crate) enum Backtraces {
    Never,
    Always,
    /// Those whose category and detail (filtered and cut) the predicate
    /// accepts.
    If(BacktracePredicate),
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) slots: Slots,
    pub(crate) dropped: u64,
    /// The last non-nesting action started, until its end is settled: while
    /// it runs, it blocks every start.
    pub(crate) open: Option<Open>,
    /// The category and detail of the open action when it was not stored,
    /// for the error that refuses a start meanwhile. Kept apart from
    /// `open` so that settling the common, stored case moves one word.
    open_not_stored: Option<Named>,
    /// The end of the last non-nesting action: no later action starts
    /// before it, whatever the clock's reads were reordered to.
    pub(crate) floor_ns: u64,
    pub(crate) violations: Vec<Violation>,
    /// The slot of the non-nesting action that set `floor_ns`, if stored:
    /// what a recorded action starting before the floor overlapped.
    floor_slot: Option<usize>,
    /// What the timeline holds, in bytes, against `max_bytes`: slots
    /// (whole chunks), owned strings, outcomes, backtraces, violations.
    pub(crate) bytes: usize,
}

#[derive(Clone, Copy)]
pub(crate) enum Open {
    Stored(usize),
    /// Counted in `dropped()`, but still blocking: the rules do not change
    /// when the timeline is full. Named by `State::open_not_stored`.
    NotStored,
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
    #[cfg_attr(not(any(feature = "tracing", feature = "diesel")), allow(dead_code))]
    pub(crate) fn start_unrefused(
        &self,
        category: Cow<'static, str>,
        detail: Cow<'static, str>,
        nested: bool,
    ) -> ActionGuard {
        // A bridge is called from a library's code, not the application's:
        // where it was called from only a backtrace tells.
        match self.try_start(category, detail, nested, OnOverlap::Concurrent, None) {
            Ok(started) => started.guard(self),
            Err(_) => unreachable!("a start that may be concurrent is never refused"),
        }
    }

    /// Stores the start of an action, for the caller to wrap in a guard
    /// that holds a handle to `self`. Inlined into every caller, where the
    /// strings' kind is known, to pick one of two paths kept out of line.
    #[inline(always)]
    pub(crate) fn try_start(
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
            Some(Location::caller()),
        );
    }

    /// Adds an action that ended now after running for `duration`: what a
    /// bridge learns from an event such as sqlx's, which fires when its
    /// query finished. Never refused, like [`record`](Self::record).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))] // the tracing bridge's
    pub(crate) fn record_ended_now(
        &self,
        category: Cow<'static, str>,
        detail: Cow<'static, str>,
        duration: Duration,
        outcome: Outcome,
    ) {
        let end_ns = self.inner.clock.now_ns().min(UNFINISHED - 1);
        let start_ns = end_ns.saturating_sub(saturating_nanos(duration));
        self.inner
            .push_recorded(category, detail, start_ns, end_ns, outcome, None);
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
        let as_of = self.inner.report_now_ns();
        let state = self.inner.lock();
        state.log_tuples(as_of)
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

    /// The wall-clock time at which the timeline started.
    pub fn baseline(&self) -> SystemTime {
        self.inner.clock.baseline_wall()
    }

    /// The time since the timeline started.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.inner.report_now_ns())
    }

    /// The settings the timeline was built with, for the guard and `#[timed]`.
    pub(crate) fn is_strict(&self) -> bool {
        self.inner.config.strict
    }
}

/// What a start does when a non-nesting action is unfinished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnOverlap {
    /// Return an [`OverlapError`]: for people who call `start` themselves.
    Refuse,
    /// Store the action as concurrent and note a [`Violation`]: nothing is
    /// lost to the rule.
    Concurrent,
}

/// A stored start, not yet wrapped in its guard.
///
/// Two `u64`s, so that the start, out of line wherever an application
/// starts actions from several places, returns it in two registers. With a
/// `u32` and a `bool` beside the `u64`, or wrapped in a `Result` with a
/// pointer, rustc (1.95) returns it through memory.
pub(crate) struct Started {
    start_ns: u64,
    /// The slot's index (or `u32::MAX` for [`NOT_STORED`]) in the low 32
    /// bits; bit 32 is set for the open non-nesting action.
    slot_and_sequential: u64,
}

impl Started {
    const SEQUENTIAL: u64 = 1 << 32;

    /// What `start_static` returns beside an error, to be dropped.
    const REFUSED: Started = Started {
        start_ns: 0,
        slot_and_sequential: u32::MAX as u64,
    };

    #[inline(always)]
    fn new(slot: u32, start_ns: u64, sequential: bool) -> Started {
        Started {
            start_ns,
            slot_and_sequential: u64::from(slot) | if sequential { Self::SEQUENTIAL } else { 0 },
        }
    }

    #[inline]
    pub(crate) fn guard(self, timeline: &Timeline) -> ActionGuard {
        self.into_guard(timeline.clone())
    }

    /// The guard, holding the caller's own handle: no reference count
    /// changes hands.
    #[inline]
    pub(crate) fn into_guard(self, timeline: Timeline) -> ActionGuard {
        // Truncates to the low 32 bits, which are the slot.
        let slot = self.slot_and_sequential as u32;
        let sequential = self.slot_and_sequential & Self::SEQUENTIAL != 0;
        ActionGuard::new(timeline, slot, self.start_ns, sequential)
    }
}

/// A slot's index as a guard keeps it: [`MAX_ACTIONS`] keeps stored ones
/// below `u32::MAX`, which stands for [`NOT_STORED`].
#[inline]
fn guard_slot(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// What one violation costs besides its strings and its entry in the
/// vector (counted as the vector grows): the boxed pair of names.
const VIOLATION_BYTES: usize = std::mem::size_of::<Named>() * 2;

/// How far the start of a recorded action may fall before the end of the
/// previous one and still count as following it. An emitter measures a
/// duration with its own clock and reports it a little later; subtracting it
/// from our "now" places the start a few microseconds early, which would
/// otherwise make back-to-back statements look concurrent.
const RECORD_SKEW_NS: u64 = 50_000;

impl State {
    /// A snapshot of the stored actions as of `as_of`, in start order.
    pub(crate) fn actions(&self, as_of: u64) -> Vec<Action> {
        // Sized once: growing it would copy every action several times.
        let mut actions = Vec::with_capacity(self.slots.len());
        for chunk in self.slots.chunks() {
            actions.extend(chunk.iter().map(|slot| slot.action(as_of)));
        }
        // Slots are stored in start order except for `record`ed ones.
        if !self.slots.in_start_order() {
            actions.sort_by_key(|action| action.start_ns);
        }
        actions
    }

    /// The flat OOPS form as of `as_of`.
    pub(crate) fn log_tuples(&self, as_of: u64) -> Vec<LogTuple> {
        // (time, order, slot, is_stop): at equal times a `-stop` comes after
        // the actions stored before the nesting action finished, and before
        // those stored after.
        let mut events: Vec<(u64, usize, usize, bool)> = Vec::with_capacity(self.slots.len());
        for (index, slot) in self.slots.iter().enumerate() {
            events.push((slot.start_ns, 2 * index + 1, index, false));
            if slot.nested && slot.is_finished() {
                events.push((slot.end_ns, 2 * slot.end_seq as usize, index, true));
            }
        }
        events.sort_unstable();
        events
            .into_iter()
            .map(|(_, _, index, is_stop)| {
                let Some(slot) = self.slots.get(index) else {
                    unreachable!("events name stored slots")
                };
                if slot.nested {
                    let (suffix, at, backtrace) = if is_stop {
                        ("-stop", slot.end_ns, None)
                    } else {
                        ("-start", slot.start_ns, slot.backtrace())
                    };
                    let at_ms = whole_millis(Duration::from_nanos(at));
                    LogTuple {
                        start_ms: at_ms,
                        end_ms: at_ms,
                        category: format!("{}{suffix}", slot.category()),
                        detail: slot.detail.to_string(),
                        backtrace: backtrace.map(|b| b.to_string()),
                    }
                } else {
                    let end_ns = if !slot.is_finished() {
                        as_of.max(slot.start_ns)
                    } else {
                        slot.end_ns
                    };
                    let start_ms = whole_millis(Duration::from_nanos(slot.start_ns));
                    let duration_ms =
                        whole_millis(Duration::from_nanos(end_ns.saturating_sub(slot.start_ns)));
                    LogTuple {
                        start_ms,
                        end_ms: start_ms.saturating_add(duration_ms),
                        category: slot.category().to_owned(),
                        detail: slot.detail.to_string(),
                        backtrace: slot.backtrace().map(|b| b.to_string()),
                    }
                }
            })
            .collect()
    }

    fn named(&self, open: Open) -> Named {
        let named = match open {
            Open::Stored(index) => self.slots.get(index).map(Slot::excerpt),
            Open::NotStored => self
                .open_not_stored
                .as_ref()
                .map(|named| Named::excerpt(&named.category, &named.detail)),
        };
        match named {
            Some(named) => named,
            None => unreachable!("the open action is named"),
        }
    }

    fn named_slot(&self, index: Option<usize>) -> Named {
        match index.and_then(|index| self.slots.get(index)) {
            Some(slot) => slot.excerpt(),
            None => Named {
                category: Cow::Borrowed("(not stored)"),
                detail: Cow::Borrowed(""),
            },
        }
    }

    /// Where a finished interval goes: its start, and the action it overlaps
    /// if it must be stored as concurrent. A sequential one moves the floor.
    fn place_finished(&mut self, start_ns: u64, end_ns: u64) -> (u64, Option<Named>) {
        if let Some(open) = self.open {
            let open_start = match open {
                Open::Stored(index) => self.slots.get(index).map_or(0, |slot| slot.start_ns),
                Open::NotStored => 0,
            };
            if end_ns > open_start {
                return (start_ns, Some(self.named(open)));
            }
        }
        if start_ns.saturating_add(RECORD_SKEW_NS) < self.floor_ns {
            return (start_ns, Some(self.named_slot(self.floor_slot)));
        }
        let start_ns = start_ns.max(self.floor_ns);
        self.floor_ns = self.floor_ns.max(end_ns);
        (start_ns, None)
    }

    fn note_violation(&mut self, open: Named, attempted: Named, at_ns: u64, config: &Config) {
        // A full vector doubles (to at least 4) when pushed to.
        let growth = if self.violations.len() == self.violations.capacity() {
            self.violations.capacity().max(4) * std::mem::size_of::<Violation>()
        } else {
            0
        };
        let bytes =
            self.bytes + VIOLATION_BYTES + growth + open.heap_bytes() + attempted.heap_bytes();
        if self.violations.len() < config.max_actions && bytes <= config.max_bytes {
            self.bytes = bytes;
            self.violations.push(Violation {
                overlap: OverlapError::new(open, attempted),
                at: Duration::from_nanos(at_ns),
            });
        }
    }

    /// Finishes the open non-nesting action at `end_ns`.
    #[inline(always)]
    pub(crate) fn close_open(&mut self, end_ns: u64) -> Option<&mut Slot> {
        self.floor_ns = self.floor_ns.max(end_ns);
        match self.open.take()? {
            Open::Stored(index) => {
                self.floor_slot = Some(index);
                let slot = self.slots.get_mut(index)?;
                slot.end_ns = end_ns;
                Some(slot)
            }
            Open::NotStored => {
                self.close_not_stored();
                None
            }
        }
    }

    /// An action counted in `dropped()` instead of stored, which blocks
    /// other starts all the same unless it nests.
    #[cold]
    #[inline(never)]
    fn count_not_stored(&mut self, texts: Texts, nested: bool) {
        self.dropped += 1;
        if !nested {
            self.open = Some(Open::NotStored);
            self.open_not_stored = Some(texts.into_named());
        }
    }

    #[cold]
    fn close_not_stored(&mut self) {
        self.floor_slot = None;
        self.open_not_stored = None;
    }
}

impl Inner {
    /// The state, with the end of an open action that finished without the
    /// lock settled into its slot.
    #[inline(always)]
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock();
        if state.open.is_some() {
            let end_ns = self.open_end.load(Ordering::Acquire);
            if end_ns != RUNNING {
                state.close_open(end_ns);
            }
        }
        state
    }

    /// A backtrace, if the settings ask for one for this action. Runs
    /// before the lock: the predicate is user code.
    #[inline]
    #[allow(clippy::ptr_arg)] // the caller holds `Cow`s
    fn capture_backtrace(
        &self,
        category: &Cow<'static, str>,
        detail: &Cow<'static, str>,
    ) -> Option<Arc<str>> {
        match &self.config.backtraces {
            Backtraces::Never => None,
            Backtraces::Always => Some(crate::backtrace::capture()),
            Backtraces::If(predicate) => {
                // A predicate that panics, or an action it starts itself,
                // gets no backtrace.
                detail::call_user_code(|| predicate(category, detail))
                    .unwrap_or(false)
                    .then(crate::backtrace::capture)
            }
        }
    }

    /// "Now" for snapshots and reports: the clock, or the fixed time of a
    /// timeline built with fixed timings.
    pub(crate) fn report_now_ns(&self) -> u64 {
        self.frozen_now_ns.unwrap_or_else(|| self.clock.now_ns())
    }

    /// The category cut to its bound, the detail filtered and cut: what is
    /// stored of them. Runs before the lock: the filter is user code.
    #[inline]
    fn prepare(&self, category: Cow<'static, str>, detail: Cow<'static, str>) -> Named {
        Named {
            category: detail::bound_category(category),
            detail: detail::prepare(
                detail,
                self.config.detail_filter.as_ref(),
                self.config.max_detail_len,
            ),
        }
    }

    /// Whether a static category and detail are stored as they are: no
    /// filter to run, nothing to cut, no backtrace to take.
    #[inline]
    fn stores_unchanged(&self, category: &str, detail: &str) -> bool {
        category.len() <= detail::MAX_CATEGORY_LEN
            && detail.len() <= self.config.max_detail_len
            && self.config.detail_filter.is_none()
            && matches!(self.config.backtraces, Backtraces::Never)
    }

    /// The start of an action with static strings: its strings arrive in
    /// registers and, unless they need filtering or cutting or a backtrace
    /// is due, go into the slot from there.
    ///
    /// A refusal goes to `refused`, so that the start itself comes back in
    /// two registers (see [`Started`]).
    #[inline]
    fn start_static(
        &self,
        category: &'static str,
        detail: &'static str,
        nested: bool,
        on_overlap: OnOverlap,
        call_site: Option<&'static Location<'static>>,
        refused: &mut Option<OverlapError>,
    ) -> Started {
        let started = if self.stores_unchanged(category, detail) {
            self.start_prepared(
                StaticTexts { category, detail },
                nested,
                on_overlap,
                call_site,
            )
        } else {
            let (category, detail) = (Cow::Borrowed(category), Cow::Borrowed(detail));
            self.start_general(category, detail, nested, on_overlap, call_site)
        };
        started.unwrap_or_else(|error| {
            *refused = Some(error);
            Started::REFUSED
        })
    }

    /// The start of an action whose strings may need filtering or cutting,
    /// or that may take a backtrace: out of line, so that what every call
    /// site inlines is the static case only.
    #[inline(never)]
    fn start_general(
        &self,
        category: Cow<'static, str>,
        detail: Cow<'static, str>,
        nested: bool,
        on_overlap: OnOverlap,
        call_site: Option<&'static Location<'static>>,
    ) -> Result<Started, OverlapError> {
        let named = self.prepare(category, detail);
        let backtrace = self.capture_backtrace(&named.category, &named.detail);
        let texts = Texts::new(named, Outcome::Ok, backtrace);
        self.start_prepared(texts, nested, on_overlap, call_site)
    }

    /// The start of an action whose category and detail are prepared and
    /// whose backtrace, if any, is taken: what happens under the lock.
    #[inline(always)]
    fn start_prepared(
        &self,
        texts: impl SlotTexts,
        nested: bool,
        on_overlap: OnOverlap,
        call_site: Option<&'static Location<'static>>,
    ) -> Result<Started, OverlapError> {
        let mut state = self.lock();
        if let Some(open) = state.open {
            let texts = texts.into_texts();
            return self.start_while_open(state, open, texts, nested, on_overlap, call_site);
        }
        // Read under the lock that enforces the rule, and never before the
        // end of the previous action: the recorded intervals of non-nesting
        // actions cannot overlap.
        let start_ns = self.clock.now_ns().max(state.floor_ns);
        let slot = if let Some(bytes) = self.room_for(&state, texts.heap_bytes()) {
            state.bytes = bytes;
            let at = Placed {
                start_ns,
                end_ns: UNFINISHED,
                nested,
                concurrent: false,
                call_site,
            };
            let index = state.slots.push_with(|| texts.into_slot(at, 0));
            if !nested {
                state.open = Some(Open::Stored(index));
            }
            index
        } else {
            state.count_not_stored(texts.into_texts(), nested);
            NOT_STORED
        };
        if !nested {
            self.open_end.store(RUNNING, Ordering::Relaxed);
        }
        drop(state);
        Ok(Started::new(guard_slot(slot), start_ns, !nested))
    }

    /// A start while a non-nesting action is open: refused, or stored as
    /// concurrent. Out of line, as every rare branch of the start is: a
    /// smaller `start_static` gets `Vec::push` and the slot lookup inlined.
    #[cold]
    #[inline(never)]
    fn start_while_open(
        &self,
        mut state: MutexGuard<'_, State>,
        open: Open,
        texts: Texts,
        nested: bool,
        on_overlap: OnOverlap,
        call_site: Option<&'static Location<'static>>,
    ) -> Result<Started, OverlapError> {
        let open = state.named(open);
        match on_overlap {
            OnOverlap::Refuse => {
                drop(state);
                Err(OverlapError::new(open, texts.into_named()))
            }
            OnOverlap::Concurrent => {
                Ok(self.start_concurrent(&mut state, open, texts, nested, call_site))
            }
        }
    }

    /// Stores an action that overlaps the unfinished `open` one beside it,
    /// as concurrent, and notes the overlap.
    #[cold]
    #[inline(never)]
    fn start_concurrent(
        &self,
        state: &mut State,
        open: Named,
        attempted: Texts,
        nested: bool,
        call_site: Option<&'static Location<'static>>,
    ) -> Started {
        let start_ns = self.clock.now_ns();
        let noted = attempted.excerpt();
        let at = Placed {
            start_ns,
            end_ns: UNFINISHED,
            nested,
            concurrent: true,
            call_site,
        };
        let slot = self.store(state, attempted, at);
        state.note_violation(open, noted, start_ns, &self.config);
        Started::new(guard_slot(slot), start_ns, false)
    }

    /// What `state.bytes` becomes with one more slot holding these, if that
    /// is within both limits.
    #[inline]
    fn room_for(&self, state: &State, heap_bytes: usize) -> Option<usize> {
        if state.slots.len() >= self.config.max_actions {
            return None;
        }
        let bytes = state.bytes + state.slots.bytes_to_push() + heap_bytes;
        (bytes <= self.config.max_bytes).then_some(bytes)
    }

    /// Stores a slot if there is room, else counts it in `dropped()`.
    fn store(&self, state: &mut State, texts: Texts, at: Placed) -> usize {
        if let Some(bytes) = self.room_for(state, texts.heap_bytes()) {
            state.bytes = bytes;
            let end_seq = u32::try_from(state.slots.len() + 1).unwrap_or(u32::MAX);
            state.slots.push_with(|| texts.into_slot(at, end_seq))
        } else {
            state.dropped += 1;
            NOT_STORED
        }
    }

    /// Stores a finished non-nesting action, after the fact: in the sequence
    /// where it fits there, else as concurrent with a violation noted.
    pub(crate) fn push_recorded(
        &self,
        category: Cow<'static, str>,
        detail: Cow<'static, str>,
        start_ns: u64,
        end_ns: u64,
        outcome: Outcome,
        call_site: Option<&'static Location<'static>>,
    ) {
        let attempted = self.prepare(category, detail);
        let backtrace = self.capture_backtrace(&attempted.category, &attempted.detail);
        let attempted = Texts::new(attempted, outcome, backtrace);
        let mut state = self.lock();
        let (start_ns, overlapped) = state.place_finished(start_ns, end_ns);
        let at = Placed {
            start_ns,
            end_ns: end_ns.max(start_ns),
            nested: false,
            concurrent: overlapped.is_some(),
            call_site,
        };
        match overlapped {
            None => {
                let index = self.store(&mut state, attempted, at);
                if index != NOT_STORED {
                    state.floor_slot = Some(index);
                }
            }
            Some(open) => {
                let noted = attempted.excerpt();
                self.store(&mut state, attempted, at);
                state.note_violation(open, noted, start_ns, &self.config);
            }
        }
    }

    /// Stores an already finished (or, with `end_ns == UNFINISHED`, a
    /// never-finishing) action as given, whatever is open: for fixed
    /// timelines.
    pub(crate) fn push_finished(
        &self,
        category: Cow<'static, str>,
        detail: Cow<'static, str>,
        start_ns: u64,
        end_ns: u64,
        nested: bool,
        outcome: Outcome,
    ) {
        let named = self.prepare(category, detail);
        let backtrace = self.capture_backtrace(&named.category, &named.detail);
        let texts = Texts::new(named, outcome, backtrace);
        let at = Placed {
            start_ns,
            end_ns,
            nested,
            concurrent: false,
            call_site: None,
        };
        let mut state = self.lock();
        self.store(&mut state, texts, at);
    }
}

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
    baseline_wall: Option<SystemTime>,
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
    /// recorded as a [`Violation`] (default `false`). Useful in tests.
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
        self.config.finding_rules = rules;
        self
    }

    /// The timeline, starting now.
    pub fn build(self) -> Timeline {
        let clock = match self.baseline_wall {
            Some(wall) => Clock::with_wall(wall),
            None => Clock::start(),
        };
        Timeline {
            inner: Arc::new(Inner {
                clock,
                config: self.config,
                state: Mutex::new(State::default()),
                open_end: AtomicU64::new(RUNNING),
                frozen_now_ns: None,
                pauses: Pauses::default(),
                trace_context: std::sync::OnceLock::new(),
            }),
        }
    }

    /// A timeline whose report time is fixed: for reproducible reports of
    /// actions added with [`Timeline::push_fixed`].
    pub(crate) fn build_fixed(mut self, baseline_wall: SystemTime, now: Duration) -> Timeline {
        self.baseline_wall = Some(baseline_wall);
        let mut timeline = self.build();
        if let Some(inner) = Arc::get_mut(&mut timeline.inner) {
            inner.frozen_now_ns = Some(saturating_nanos(now));
        }
        timeline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_fits_two_registers() {
        assert_eq!(std::mem::size_of::<Started>(), 16);
    }

    #[test]
    fn a_start_keeps_its_slot_and_kind() {
        let timeline = Timeline::new();
        let guard = Started::new(7, 42, true).into_guard(timeline.clone());
        let shown = format!("{guard:?}");
        assert!(shown.contains("sequential: true, stored: true"), "{shown}");
        let guard = Started::new(u32::MAX, 42, false).into_guard(timeline);
        let shown = format!("{guard:?}");
        assert!(
            shown.contains("sequential: false, stored: false"),
            "{shown}"
        );
    }

    /// A recorded interval that ends exactly when the open action started
    /// came before it: it does not overlap.
    #[test]
    fn a_recorded_interval_ending_at_the_open_start_does_not_overlap() {
        let timeline = Timeline::new();
        let _open = timeline.start("HTTP-get", "/api").unwrap();
        let mut state = timeline.inner.lock();
        let open_start = state.slots.get(0).unwrap().start_ns;
        assert!(open_start > 0);
        let (_, overlaps) = state.place_finished(0, open_start);
        assert!(overlaps.is_none());
        let (_, overlaps) = state.place_finished(0, open_start + 1);
        assert_eq!(overlaps.unwrap().detail, "/api");
    }

    /// A recorded start up to `RECORD_SKEW_NS` before the end of the last
    /// action still follows it, moved to that end; one further back
    /// overlapped it.
    #[test]
    fn a_recorded_start_within_the_skew_follows_the_last_action() {
        let timeline = Timeline::new();
        timeline.start("SQL-main", "SELECT 1").unwrap().finish();
        let mut state = timeline.inner.lock();
        state.floor_ns = 10 * RECORD_SKEW_NS;
        let floor = state.floor_ns;
        let (start, overlaps) = state.place_finished(floor - RECORD_SKEW_NS, floor + 10);
        assert!(overlaps.is_none());
        assert_eq!(start, floor, "moved to the end of the last action");
        let floor = state.floor_ns;
        let (start, overlaps) = state.place_finished(floor - RECORD_SKEW_NS - 1, floor + 20);
        assert_eq!(overlaps.unwrap().detail, "SELECT 1");
        assert_eq!(start, floor - RECORD_SKEW_NS - 1, "kept where it was");
    }
}
