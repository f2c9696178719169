//! The layer inside [`TimelineLayer`](super::TimelineLayer) and its
//! per-layer filter: what happens to each selected span and event.

use std::cell::Cell;
use std::panic::Location;
use std::sync::Arc;

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::subscriber::Interest;
use tracing_core::{Event, LevelFilter, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use super::rule::Rule;
use super::values::{Capture, Values};
use crate::current::none_current;
use crate::record::EndedAction;
use crate::{ActionGuard, Timeline, current};
use crate::{call_site, carrier_span};

thread_local! {
    /// Set while the bridge calls into a timeline on this thread.
    static CALLING_TIMELINE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, which calls into a timeline, marked as such: the spans and
/// events that user code run by the timeline (a detail filter that logs)
/// emits are not recorded, since recording them would run that code again,
/// without bound. `tracing` guards events against such re-entry, but not
/// the entering of spans.
fn calling_timeline<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = CALLING_TIMELINE.try_with(|calling| calling.set(self.0));
        }
    }
    let previous = CALLING_TIMELINE
        .try_with(|calling| calling.replace(true))
        .unwrap_or(false);
    let _restore = Restore(previous);
    f()
}

/// Whether this thread is inside [`calling_timeline`].
/// Reads a span's or an event's fields. A field's `Debug` or `Display` is
/// user code: one that panics must not unwind through the subscriber into
/// the program, nor lose the action. What was read before it is kept.
fn read_fields(read: impl FnOnce()) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read));
}

fn inside_timeline_call() -> bool {
    CALLING_TIMELINE.try_with(Cell::get).unwrap_or(false)
}

/// The rules of one layer, shared by its filter and its layer.
pub(super) type Rules = Arc<[Rule]>;

fn is_request_span(metadata: &Metadata<'_>) -> bool {
    metadata.is_span()
        && metadata.name() == carrier_span::NAME
        && metadata.target() == carrier_span::TARGET
}

/// The span of [`with_call_site`](crate::WithCallSite::with_call_site).
fn is_call_site_span(metadata: &Metadata<'_>) -> bool {
    metadata.is_span()
        && metadata.name() == call_site::NAME
        && metadata.target() == call_site::TARGET
}

/// The call site a [`with_call_site`](crate::WithCallSite::with_call_site)
/// span carries.
struct SpanCallSite(&'static Location<'static>);

/// The per-layer filter: enables the selected call sites and the request
/// span, nothing else, so unselected call sites cost the bridge nothing and
/// other layers see exactly what their own filters let through.
pub(super) struct Selection {
    pub(crate) rules: Rules,
}

impl Selection {
    fn wants(&self, metadata: &Metadata<'_>) -> bool {
        is_request_span(metadata)
            || is_call_site_span(metadata)
            || self.rules.iter().any(|rule| rule.selects(metadata))
    }
}

impl<S> Filter<S> for Selection {
    fn enabled(&self, metadata: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        self.wants(metadata)
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        // The decision depends on the call site alone: cached by `tracing`,
        // it is never asked again for that call site.
        if self.wants(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // The request span is TRACE, and the selected crates choose their
        // own levels (sqlx's is configurable): nothing may be ruled out.
        Some(LevelFilter::TRACE)
    }
}

/// Records selected spans and events as actions.
pub(super) struct Bridge {
    pub(crate) rules: Rules,
}

/// The timeline a request span carries.
pub(super) struct SpanTimeline(pub(super) Timeline);

/// The timeline of a selected span (or a `with_call_site` span) created
/// inside a request, for counting the threads inside it as outstanding work
/// (see `Bridge::on_enter`).
/// Kept apart from [`SpanAction`], which is taken out of the span while it
/// changes, so that every exit finds what its enter found.
struct Counted(Timeline);

/// A selected span, from its creation to its close.
struct SpanAction {
    rule: usize,
    values: Values,
    /// The request's timeline, found when the span was created.
    timeline: Option<Timeline>,
    state: SpanState,
}

enum SpanState {
    /// Not entered yet.
    Pending,
    /// Its action, finished when the span closes — or earlier, when the
    /// source reports its outcome or the driver its timing.
    Recording(ActionGuard),
    /// Its action ended before the span closed; what the span records
    /// until it closes still corrects it.
    Ended(EndedAction),
    /// Entered, but not recorded: outside every request, covered by an
    /// outer action, or refused by the rule's condition.
    Skipped,
}

impl SpanAction {
    /// Whether actions inside this span are part of its action.
    fn covers(&self, rules: &[Rule]) -> bool {
        matches!(self.state, SpanState::Recording(_) | SpanState::Ended(_))
            && !rules[self.rule].nested
    }

    /// Takes in fields the span recorded: once the source reported the
    /// outcome, the action ends; after that, the outcome follows what
    /// the span records.
    fn recorded(&mut self, rule: &Rule, values: Values) {
        self.values.merge(values);
        match std::mem::replace(&mut self.state, SpanState::Skipped) {
            SpanState::Recording(guard) if rule.reported(&self.values) => {
                let outcome = rule.render_outcome(&self.values);
                self.state = SpanState::Ended(calling_timeline(|| guard.end_correctable(outcome)));
            }
            SpanState::Ended(mut ended) => {
                let outcome = rule.render_outcome(&self.values);
                calling_timeline(|| ended.set_outcome(outcome));
                self.state = SpanState::Ended(ended);
            }
            state => self.state = state,
        }
    }

    /// The driver's event inside the span reported its own timing: the
    /// action takes it (see [`Rule::timed_by_driver`]).
    fn driver_timed(&mut self, rule: &Rule, duration: std::time::Duration) {
        let mut ended = match std::mem::replace(&mut self.state, SpanState::Skipped) {
            SpanState::Recording(guard) => {
                let outcome = rule.render_outcome(&self.values);
                calling_timeline(|| guard.end_correctable(outcome))
            }
            SpanState::Ended(ended) => ended,
            state => {
                self.state = state;
                return;
            }
        };
        calling_timeline(|| ended.narrow_to_driver(duration));
        self.state = SpanState::Ended(ended);
    }
}

/// What the spans around a span or event say about it.
#[derive(Default)]
struct Surroundings {
    timeline: Option<Timeline>,
    /// Inside the action of a non-nesting span: part of that action.
    covered: bool,
    /// That span, if its rule takes the timing of the events inside.
    timed_by: Option<Id>,
}

impl Bridge {
    fn rule_for(&self, metadata: &Metadata<'_>) -> Option<usize> {
        self.rules.iter().position(|rule| rule.selects(metadata))
    }

    /// Walks out from `spans` (innermost first) to the request span: the
    /// request's timeline, and whether an outer action covers this one.
    /// Each span's extensions are locked only to read them.
    fn surroundings<'a, S>(&self, spans: impl Iterator<Item = SpanRef<'a, S>>) -> Surroundings
    where
        S: Subscriber + for<'l> LookupSpan<'l>,
    {
        let mut found = Surroundings::default();
        for span in spans {
            let extensions = span.extensions();
            if let Some(action) = extensions.get::<SpanAction>() {
                if action.covers(&self.rules) {
                    found.covered = true;
                    if self.rules[action.rule].timed_by_driver {
                        found.timed_by = Some(span.id());
                    }
                    return found;
                }
                if found.timeline.is_none() {
                    found.timeline.clone_from(&action.timeline);
                }
            } else if let Some(SpanTimeline(timeline)) = extensions.get::<SpanTimeline>() {
                if found.timeline.is_none() {
                    found.timeline = Some(timeline.clone());
                }
                // Spans outside the request span are outside the request.
                return found;
            }
        }
        found
    }
}

impl<S> Layer<S> for Bridge
where
    S: Subscriber + for<'l> LookupSpan<'l>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let metadata = attrs.metadata();
        let Some(span) = ctx.span(id) else { return };
        if is_request_span(metadata) {
            if let Some(timeline) = current() {
                span.extensions_mut().replace(SpanTimeline(timeline));
            }
            return;
        }
        if is_call_site_span(metadata) {
            let mut extensions = span.extensions_mut();
            if let Some(location) = call_site::scoped() {
                extensions.replace(SpanCallSite(location));
            }
            // sqlx's SQLite worker enters this span, not the request's: its
            // work is counted on the request's timeline all the same.
            if let Some(timeline) = current() {
                extensions.replace(Counted(timeline));
            }
            return;
        }
        let Some(rule) = self.rule_for(metadata) else {
            return;
        };
        if inside_timeline_call() {
            return;
        }
        let mut values = Values::default();
        read_fields(|| {
            attrs.record(&mut Capture {
                fields: self.rules[rule].reads(),
                values: &mut values,
            });
        });
        // Resolved now, while the span is still in the request's context:
        // it may be entered later on a thread that knows no timeline.
        let timeline = current().or_else(|| {
            let parents = span.scope().skip(1);
            self.surroundings(parents).timeline
        });
        let mut extensions = span.extensions_mut();
        if let Some(timeline) = &timeline {
            extensions.replace(Counted(timeline.clone()));
        }
        extensions.replace(SpanAction {
            rule,
            values,
            timeline,
            state: SpanState::Pending,
        });
    }

    fn on_record(&self, id: &Id, record: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let Some(rule) = span.extensions().get::<SpanAction>().map(|a| a.rule) else {
            return;
        };
        let rule = &self.rules[rule];
        // Read with no lock held: `Debug` impls are user code, which may
        // log. Merged under the lock, without taking the action out of the
        // span, so that another thread's event inside it (a driver's
        // worker) still finds it.
        let mut recorded = Values::default();
        read_fields(|| {
            record.record(&mut Capture {
                fields: rule.reads(),
                values: &mut recorded,
            });
        });
        if let Some(action) = span.extensions_mut().get_mut::<SpanAction>() {
            action.recorded(rule, recorded);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        // A thread with no timeline of its own inside a request's span — a
        // driver's worker — is work that may still record onto it: the
        // tower layer waits for it before it makes the report. The
        // request's own polls have the timeline current, and do not count.
        if none_current() {
            counted(&span, worker::entered);
        }
        if is_call_site_span(span.metadata()) {
            // Entered by a driver's thread too: what it runs there was
            // issued from that line. (Before the re-entry check: every
            // enter has its exit.)
            if let Some(SpanCallSite(location)) = span.extensions().get::<SpanCallSite>() {
                call_site::enter_span(id.into_u64(), location);
            }
            return;
        }
        if inside_timeline_call() {
            return;
        }
        let pending = |action: Option<&SpanAction>| {
            action.is_some_and(|action| matches!(action.state, SpanState::Pending))
        };
        // A shared lock first: most enters are of spans entered before (an
        // instrumented future is entered at every poll).
        if !pending(span.extensions().get::<SpanAction>()) {
            return;
        }
        let mut action = {
            let mut extensions = span.extensions_mut();
            if !pending(extensions.get_mut::<SpanAction>().map(|action| &*action)) {
                return; // another thread entered it meanwhile
            }
            match extensions.remove::<SpanAction>() {
                Some(action) => action,
                None => return,
            }
        };
        let rule = &self.rules[action.rule];
        let surroundings = self.surroundings(span.scope().skip(1));
        let timeline = action
            .timeline
            .clone()
            .or_else(current)
            .or(surroundings.timeline);
        action.state = match timeline {
            // Outside every request: a span's first enter decides, so that
            // spans of no request (a server's own) cost nothing afterwards.
            None => SpanState::Skipped,
            Some(_) if surroundings.covered || !rule.admits(&action.values) => SpanState::Skipped,
            Some(timeline) => {
                let category = rule.render_category(&action.values, span.metadata());
                let detail = rule.render_detail(&action.values);
                // No lock is held here: the timeline runs the detail filter.
                SpanState::Recording(calling_timeline(|| {
                    timeline.start_unrefused(category, detail, rule.nested)
                }))
            }
        };
        span.extensions_mut().replace(action);
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        // No lookup of the span for the call site: every request span is
        // exited at every poll (and the request's polls have the timeline
        // current, so they look nothing up for the worker count either).
        call_site::exit_span(id.into_u64());
        if none_current() {
            if let Some(span) = ctx.span(id) {
                counted(&span, |_| worker::exited());
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(action) = span.extensions_mut().remove::<SpanAction>() else {
            return;
        };
        let rule = &self.rules[action.rule];
        match action.state {
            SpanState::Recording(guard) => {
                let outcome = rule.render_outcome(&action.values);
                calling_timeline(|| guard.finish_with(outcome));
            }
            SpanState::Ended(mut ended) => {
                let outcome = rule.render_outcome(&action.values);
                calling_timeline(|| ended.set_outcome(outcome));
            }
            SpanState::Pending | SpanState::Skipped => {}
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        let Some(index) = self.rule_for(metadata) else {
            return;
        };
        if inside_timeline_call() {
            return;
        }
        // The driver's event is what its worker's work was for: once it
        // is recorded (below), nothing more will come of that work.
        let _work_done = worker::EventDone;
        let rule = &self.rules[index];
        let surroundings = match ctx.event_scope(event) {
            Some(scope) => self.surroundings(scope),
            None => Surroundings::default(),
        };
        if surroundings.covered {
            if let Some(span) = surroundings.timed_by.and_then(|id| ctx.span(&id)) {
                self.time_span_by_driver(&span, rule, event);
            }
            return;
        }
        // The thread's timeline first; else the request span's, for events
        // on threads that re-entered the request's span (sqlx's SQLite
        // worker). No request context at all: not part of any request.
        let Some(timeline) = current().or(surroundings.timeline) else {
            return;
        };
        let mut values = Values::default();
        read_fields(|| {
            event.record(&mut Capture {
                fields: rule.reads(),
                values: &mut values,
            });
        });
        if !rule.admits(&values) {
            return;
        }
        let category = rule.render_category(&values, metadata);
        let detail = rule.render_detail(&values);
        let duration = values.duration(rule.duration_fields()).unwrap_or_default();
        let outcome = rule.render_outcome(&values);
        calling_timeline(|| timeline.record_ended_now(category, detail, duration, outcome));
    }
}

impl Bridge {
    /// A driver's event inside `span`, whose rule takes the driver's
    /// timing: the span's action lasts the duration the event reports.
    fn time_span_by_driver<S>(&self, span: &SpanRef<'_, S>, rule: &Rule, event: &Event<'_>)
    where
        S: Subscriber + for<'l> LookupSpan<'l>,
    {
        let mut values = Values::default();
        read_fields(|| {
            event.record(&mut Capture {
                fields: rule.reads(),
                values: &mut values,
            });
        });
        let Some(duration) = values.duration(rule.duration_fields()) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if let Some(action) = extensions.get_mut::<SpanAction>() {
            let span_rule = &self.rules[action.rule];
            action.driver_timed(span_rule, duration);
        }
    }
}

/// Runs `f` on the timeline a request span carries, or the one a selected
/// span was created in (what a thread inside it works for), if it has one.
fn counted<S>(span: &SpanRef<'_, S>, f: impl FnOnce(&Timeline))
where
    S: Subscriber + for<'l> LookupSpan<'l>,
{
    let extensions = span.extensions();
    if let Some(SpanTimeline(timeline)) = extensions.get::<SpanTimeline>() {
        f(timeline);
    } else if let Some(Counted(timeline)) = extensions.get::<Counted>() {
        f(timeline);
    }
}

/// The work of a thread with no timeline of its own inside a request's
/// spans (a driver's worker), counted on the request's timeline as
/// outstanding from its outermost enter until its selected event was
/// recorded or it left the spans, whichever comes first: sqlx's SQLite
/// worker emits the query event, then still updates its statement cache
/// before it leaves the span, and the request need not wait for that.
mod worker {
    use std::cell::RefCell;

    use crate::Timeline;

    struct Work {
        timeline: Timeline,
        /// How many counted spans the thread is inside.
        depth: u32,
        /// Whether the work is still counted on the timeline.
        outstanding: bool,
    }

    impl Drop for Work {
        /// Ends the work if it is still counted: when the thread leaves the
        /// spans, or when it ends inside one (a leaked enter guard), so
        /// that no request waits for a thread that is gone.
        fn drop(&mut self) {
            if self.outstanding {
                self.timeline.work_ends();
            }
        }
    }

    thread_local! {
        static WORK: RefCell<Option<Work>> = const { RefCell::new(None) };
    }

    /// The thread entered a span of `timeline`'s request.
    pub(super) fn entered(timeline: &Timeline) {
        let _ = WORK.try_with(|work| {
            let Ok(mut work) = work.try_borrow_mut() else {
                return;
            };
            match &mut *work {
                Some(work) => work.depth += 1,
                None => {
                    timeline.work_begins();
                    *work = Some(Work {
                        timeline: timeline.clone(),
                        depth: 1,
                        outstanding: true,
                    });
                }
            }
        });
    }

    /// The thread left a span it had [`entered`].
    pub(super) fn exited() {
        let left = WORK
            .try_with(|work| {
                let mut work = work.try_borrow_mut().ok()?;
                let inside = work.as_mut()?;
                inside.depth = inside.depth.saturating_sub(1);
                if inside.depth > 0 {
                    return None;
                }
                work.take()
            })
            .ok()
            .flatten();
        // Dropped outside the borrow: ending the work wakes the request,
        // and the timeline's last handle may drop here.
        drop(left);
    }

    /// Ends the thread's outstanding work when dropped: at the end of the
    /// bridge's handling of a selected event, whatever it did with it.
    pub(super) struct EventDone;

    impl Drop for EventDone {
        fn drop(&mut self) {
            let _ = WORK.try_with(|work| {
                if let Ok(mut work) = work.try_borrow_mut() {
                    if let Some(work) = work.as_mut().filter(|work| work.outstanding) {
                        work.outstanding = false;
                        work.timeline.work_ends();
                    }
                }
            });
        }
    }
}
