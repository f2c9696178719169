//! The storage state machine: what a start, a finish and a recorded
//! interval do to a timeline's slots under its lock, and the rule that
//! actions do not overlap.

use std::borrow::Cow;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use super::Timeline;
use super::action::{Action, Outcome};
use super::calls::Calls;
use super::config::{Backtraces, Config};
use super::detail;
use super::detail::{excerpt_name, name_heap_bytes};
use super::guard::ActionGuard;
use super::pauses::Pauses;
use super::settle::Settle;
use super::slots::{Placed, RUNNING, Slot, Slots, UNFINISHED};
use super::snapshot::{LogOrder, Snapshot, Stop};
use super::texts::{SlotTexts, StaticTexts, Texts};
use crate::clock::Clock;
use crate::overlap::{ActionName, OverlapError, Violation};
use crate::sync::{AtomicU64, Mutex, MutexGuard, Ordering};
use crate::trace_context::{SpanId, TraceContext};

/// The slot of an action that was counted in `dropped()` instead of stored.
pub(super) const NOT_STORED: usize = usize::MAX;

/// What a [`Timeline`] handle shares: the clock, the settings, and the
/// state behind its lock.
pub(super) struct Inner {
    pub(super) clock: Clock,
    pub(super) config: Config,
    state: Mutex<State>,
    /// The end of the open non-nesting action, or [`RUNNING`]. Finishing
    /// that action — the common case — is this one store, without the lock;
    /// the next holder of the lock settles it into the action's slot.
    pub(super) open_end: AtomicU64,
    /// Fixes "now" for reports of timelines built with fixed timings.
    frozen_now_ns: Option<u64>,
    /// When findings were paused ([`Timeline::pause_findings`]).
    pub(super) pauses: Pauses,
    /// Work still to come, and what came too late (see `settle.rs`).
    pub(super) settle: Settle,
    /// The request's place in a distributed trace (see `trace_context.rs`).
    pub(super) trace_context: std::sync::OnceLock<crate::TraceContext>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) slots: Slots,
    pub(super) dropped: u64,
    /// The last non-nesting action started, until its end is settled: while
    /// it runs, it blocks every start.
    pub(super) open: Option<Open>,
    /// The category and detail of the open action when it was not stored,
    /// for the error that refuses a start meanwhile. Kept apart from
    /// `open` so that settling the common, stored case moves one word.
    open_not_stored: Option<ActionName>,
    /// The end of the last non-nesting action: no later action starts
    /// before it, whatever the clock's reads were reordered to.
    pub(super) floor_ns: u64,
    pub(super) violations: Vec<Violation>,
    /// The slot of the non-nesting action that set `floor_ns`, if stored:
    /// what a recorded action starting before the floor overlapped.
    floor_slot: Option<usize>,
    /// What the timeline holds, in bytes, against `max_bytes`: slots
    /// (whole chunks), owned strings, outcomes, backtraces, violations,
    /// calls.
    pub(super) bytes: usize,
    /// The actions that became outgoing calls, with their span ids, and
    /// the concurrent actions still running (see `calls.rs`).
    pub(super) calls: Calls,
}

#[derive(Clone, Copy)]
pub(super) enum Open {
    Stored(usize),
    /// Counted in `dropped()`, but still blocking: the rules do not change
    /// when the timeline is full. ActionName by `State::open_not_stored`.
    NotStored,
}

/// Who records a finished action after the fact.
#[derive(Clone, Copy)]
pub(super) enum RecordedBy {
    /// The application, at this line (`Timeline::record`).
    Caller(&'static Location<'static>),
    /// A bridge, from a library's code: the call site the application
    /// named (`with_call_site`), if any, and late once the timeline is
    /// sealed.
    Bridge(Option<&'static Location<'static>>),
}

/// What a call made now, outside any guard, belongs to (see
/// [`Timeline::call_cover`]).
#[derive(Debug)]
#[cfg_attr(
    not(any(feature = "tower", feature = "reqwest-middleware")),
    allow(dead_code)
)]
pub(crate) enum CallCover {
    /// The open action, or the request when actions overlap and which one
    /// holds the call is not known: the trace context the call carries, if
    /// the timeline has one.
    Covered(Option<TraceContext>),
    /// No action is open around it, or only one started for another call:
    /// the call may be an action of its own ([`Timeline::start_call`]).
    Bare,
}

/// What a start does when a non-nesting action is unfinished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OnOverlap {
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
pub(super) struct Started {
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

    /// A start stored nowhere and blocking nothing.
    pub(super) fn not_stored(start_ns: u64) -> Started {
        Started::new(u32::MAX, start_ns, false)
    }

    #[inline]
    pub(super) fn guard(self, timeline: &Timeline) -> ActionGuard {
        self.into_guard(timeline.clone())
    }

    /// The guard, holding the caller's own handle: no reference count
    /// changes hands.
    #[inline]
    pub(super) fn into_guard(self, timeline: Timeline) -> ActionGuard {
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
const VIOLATION_BYTES: usize = std::mem::size_of::<ActionName>() * 2;

/// How far the start of a recorded action may fall before the end of the
/// previous one and still count as following it. An emitter measures a
/// duration with its own clock and reports it a little later; subtracting it
/// from our "now" places the start a few microseconds early, which would
/// otherwise make back-to-back statements look concurrent.
const RECORD_SKEW_NS: u64 = 50_000;

impl State {
    /// A snapshot of the stored actions as of `as_of`, in start order.
    pub(super) fn actions(&self, as_of: u64) -> Vec<Action> {
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

    /// The stored actions as of `as_of` in start order, with what the
    /// flat OOPS form needs to place the `-stop` of nesting actions.
    pub(super) fn actions_in_log_order(&self, as_of: u64) -> (Vec<Action>, LogOrder) {
        let mut stops = Vec::new();
        for (index, slot) in self.slots.iter().enumerate() {
            if slot.nested && slot.is_finished() {
                stops.push(Stop {
                    slot: guard_slot(index),
                    end_seq: slot.end_seq,
                });
            }
        }
        let mut actions = Vec::with_capacity(self.slots.len());
        for chunk in self.slots.chunks() {
            actions.extend(chunk.iter().map(|slot| slot.action(as_of)));
        }
        if self.slots.in_start_order() {
            return (
                actions,
                LogOrder {
                    storage: None,
                    stops,
                },
            );
        }
        // A stable sort: at equal starts, storage order, as the OOPS form
        // has always had it.
        let mut stored: Vec<(u32, Action)> = (0..).zip(actions).collect();
        stored.sort_by_key(|(_, action)| action.start_ns);
        let (storage, actions) = stored.into_iter().unzip();
        (
            actions,
            LogOrder {
                storage: Some(storage),
                stops,
            },
        )
    }

    fn named(&self, open: Open) -> ActionName {
        let named = match open {
            Open::Stored(index) => self.slots.get(index).map(Slot::excerpt),
            Open::NotStored => self
                .open_not_stored
                .as_ref()
                .map(|named| excerpt_name(&named.category, &named.detail)),
        };
        match named {
            Some(named) => named,
            None => unreachable!("the open action is named"),
        }
    }

    fn named_slot(&self, index: Option<usize>) -> ActionName {
        match index.and_then(|index| self.slots.get(index)) {
            Some(slot) => slot.excerpt(),
            None => ActionName {
                category: Cow::Borrowed("(not stored)"),
                detail: Cow::Borrowed(""),
            },
        }
    }

    /// Where a finished interval goes: its start, and the action it overlaps
    /// if it must be stored as concurrent. A sequential one moves the floor.
    fn place_finished(&mut self, start_ns: u64, end_ns: u64) -> (u64, Option<ActionName>) {
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

    fn note_violation(
        &mut self,
        open: ActionName,
        attempted: ActionName,
        at_ns: u64,
        config: &Config,
    ) {
        // A full vector doubles (to at least 4) when pushed to.
        let growth = if self.violations.len() == self.violations.capacity() {
            self.violations.capacity().max(4) * std::mem::size_of::<Violation>()
        } else {
            0
        };
        let bytes = self.bytes
            + VIOLATION_BYTES
            + growth
            + name_heap_bytes(&open)
            + name_heap_bytes(&attempted);
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
    pub(super) fn close_open(&mut self, end_ns: u64) -> Option<&mut Slot> {
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
    pub(super) fn new(clock: Clock, config: Config, frozen_now_ns: Option<u64>) -> Inner {
        Inner {
            clock,
            config,
            state: Mutex::new(State::default()),
            open_end: AtomicU64::new(RUNNING),
            frozen_now_ns,
            pauses: Pauses::default(),
            settle: Settle::default(),
            trace_context: std::sync::OnceLock::new(),
        }
    }

    /// Stored non-nesting actions plus dropped ones.
    pub(super) fn action_count(&self) -> u64 {
        self.line_counts().0
    }

    /// What the summary line counts, in one pass under the lock: stored
    /// non-nesting actions plus the dropped ones, the concurrent ones among
    /// them, and the time to now.
    pub(super) fn line_counts(&self) -> (u64, u64, Duration) {
        let as_of = self.report_now_ns();
        let state = self.lock();
        let (mut stored, mut concurrent) = (0u64, 0u64);
        for slot in state.slots.iter().filter(|slot| !slot.nested) {
            stored += 1;
            concurrent += u64::from(slot.concurrent);
        }
        (
            stored.saturating_add(state.dropped),
            concurrent,
            Duration::from_nanos(as_of),
        )
    }

    /// `f` over the category and duration of each non-nesting action, under
    /// the lock; `f` is the crate's own code.
    pub(super) fn with_timings<R>(
        &self,
        f: impl FnOnce(&mut dyn Iterator<Item = (&str, Duration)>) -> R,
    ) -> (R, Duration) {
        let as_of = self.report_now_ns();
        let state = self.lock();
        let mut timings = state.slots.iter().filter(|slot| !slot.nested).map(|slot| {
            let end_ns = if slot.is_finished() {
                slot.end_ns
            } else {
                as_of
            };
            (
                slot.category(),
                Duration::from_nanos(end_ns.saturating_sub(slot.start_ns)),
            )
        });
        (f(&mut timings), Duration::from_nanos(as_of))
    }

    /// What the timeline counts against its `max_bytes`.
    pub(super) fn held_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Seals the timeline for its report (see `settle.rs`), under the lock
    /// that bridges' recordings check it under.
    pub(super) fn seal(&self) {
        let _state = self.lock();
        self.settle.seal();
    }

    /// Everything a reader needs, taken under one lock.
    pub(super) fn snapshot(&self) -> Snapshot {
        let as_of = self.report_now_ns();
        let paused = self.pauses.merged();
        let state = self.lock();
        let (actions, log_order) = state.actions_in_log_order(as_of);
        Snapshot {
            actions,
            log_order,
            dropped: state.dropped,
            late: self.settle.late(),
            violations: state.violations.clone(),
            elapsed: Duration::from_nanos(as_of),
            baseline: self.clock.baseline_wall(),
            trace_context: self.trace_context.get().cloned(),
            calls: state.calls.span_ids(),
            finding_rules: self.config.finding_rules.clone(),
            paused,
        }
    }

    /// The span id of the action at `slot` as an outgoing call, drawn at
    /// its first call; `None` if it was not stored or there is no room.
    pub(super) fn mark_call(&self, slot: u32, dedicated: bool) -> Option<SpanId> {
        if slot == u32::MAX {
            return None;
        }
        let mut state = self.lock();
        let state = &mut *state;
        state
            .calls
            .mark(slot, dedicated, &mut state.bytes, self.config.max_bytes)
    }

    /// What a call made now, outside any guard, belongs to: the open
    /// non-nesting action, which then becomes a call, unless it was started
    /// for a call of its own. While a concurrent action runs, which action
    /// holds the call is not known: it is the request's.
    pub(super) fn call_cover(&self) -> CallCover {
        let trace = self.trace_context.get();
        let mut state = self.lock();
        if state.calls.concurrent_may_hold_a_call() {
            return CallCover::Covered(trace.cloned());
        }
        match state.open {
            None => CallCover::Bare,
            Some(Open::NotStored) => CallCover::Covered(trace.cloned()),
            Some(Open::Stored(index)) => {
                let slot = guard_slot(index);
                if state.calls.is_dedicated(slot) {
                    return CallCover::Bare;
                }
                let Some(trace) = trace else {
                    return CallCover::Covered(None);
                };
                let state = &mut *state;
                let span_id =
                    state
                        .calls
                        .mark(slot, false, &mut state.bytes, self.config.max_bytes);
                CallCover::Covered(Some(match span_id {
                    Some(span_id) => trace.for_call(span_id),
                    None => trace.clone(),
                }))
            }
        }
    }

    /// The state, with the end of an open action that finished without the
    /// lock settled into its slot.
    #[inline(always)]
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
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
        call_site: Option<&'static Location<'static>>,
    ) -> Option<Arc<str>> {
        match &self.config.backtraces {
            Backtraces::Never => None,
            Backtraces::Always => crate::backtrace::capture(),
            Backtraces::WithoutCallSite if call_site.is_some() => None,
            Backtraces::WithoutCallSite => crate::backtrace::capture(),
            Backtraces::If(predicate) => {
                // A predicate that panics, or an action it starts itself,
                // gets no backtrace.
                detail::call_user_code(|| predicate(category, detail))
                    .unwrap_or(false)
                    .then(crate::backtrace::capture)
                    .flatten()
            }
        }
    }

    /// "Now" for snapshots and reports: the clock, or the fixed time of a
    /// timeline built with fixed timings.
    pub(super) fn report_now_ns(&self) -> u64 {
        self.frozen_now_ns.unwrap_or_else(|| self.clock.now_ns())
    }

    /// The category cut to its bound, the detail filtered and cut: what is
    /// stored of them. Runs before the lock: the filter is user code.
    #[inline]
    fn prepare(&self, category: Cow<'static, str>, detail: Cow<'static, str>) -> ActionName {
        ActionName {
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
    pub(super) fn start_static(
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
    pub(super) fn start_general(
        &self,
        category: Cow<'static, str>,
        detail: Cow<'static, str>,
        nested: bool,
        on_overlap: OnOverlap,
        call_site: Option<&'static Location<'static>>,
    ) -> Result<Started, OverlapError> {
        let named = self.prepare(category, detail);
        let backtrace = self.capture_backtrace(&named.category, &named.detail, call_site);
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
        open: ActionName,
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
        if slot != NOT_STORED {
            state
                .calls
                .started_concurrent(guard_slot(slot), &mut state.bytes);
        }
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
    /// where it fits there, else as concurrent with a violation noted. One
    /// `from_bridge` is counted as late instead once the timeline is sealed.
    pub(super) fn push_recorded(
        &self,
        category: Cow<'static, str>,
        detail: Cow<'static, str>,
        start_ns: u64,
        end_ns: u64,
        outcome: Outcome,
        from: RecordedBy,
    ) {
        let (call_site, from_bridge) = match from {
            RecordedBy::Caller(location) => (Some(location), false),
            RecordedBy::Bridge(call_site) => (call_site, true),
        };
        let attempted = self.prepare(category, detail);
        let backtrace = self.capture_backtrace(&attempted.category, &attempted.detail, call_site);
        let attempted = Texts::new(attempted, outcome, backtrace);
        let mut state = self.lock();
        // Asked under the lock that the seal takes: what a bridge brings
        // either is in the report or is late, never in the timeline alone.
        if from_bridge && self.settle.is_sealed() {
            drop(state);
            self.settle.count_late();
            return;
        }
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
    pub(super) fn push_finished(
        &self,
        category: Cow<'static, str>,
        detail: Cow<'static, str>,
        start_ns: u64,
        end_ns: u64,
        nested: bool,
        outcome: Outcome,
    ) {
        let named = self.prepare(category, detail);
        let backtrace = self.capture_backtrace(&named.category, &named.detail, None);
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
