//! A [`tracing_subscriber::Layer`] that records what instrumented crates
//! already emit — sqlx's query events, sea-orm's, reqwest-tracing's,
//! tower-http's and the AWS SDK's spans — as actions on the request's own
//! timeline, with no change to your code.
//!
//! # The setup to copy
//!
//! ```
//! use timeline_core::integrations::tracing::TimelineLayer;
//! use tracing_subscriber::{EnvFilter, prelude::*};
//!
//! tracing_subscriber::registry()
//!     // Your log output, with its filter on the fmt layer itself…
//!     .with(tracing_subscriber::fmt::layer().with_filter(EnvFilter::new("info")))
//!     // …and the timeline layer next to it, with no filter: it has its own.
//!     .with(TimelineLayer::new())
//!     .init();
//! // Then give each request a timeline: `RequestTimelineLayer` (feature
//! // `tower`) or `handler.with_timeline(timeline)`.
//! ```
//!
//! [`TimelineLayer::new`] selects what the [`presets`] describe: sqlx
//! (`SQL-main`, and `SQL-connect` for connection set-up), sea-orm
//! (`SQL-main`), reqwest-tracing, tower-http clients (`HTTP-GET`…) and the
//! AWS SDK (`AWS-S3`…). [`TimelineLayer::empty`] with
//! [`rule`](TimelineLayer::rule)s records your own selection. What each
//! of them tells — statement, parameters, duration, errors, rows, call
//! site, connection set-up — is tabled in the repository's
//! `docs/sources.md`.
//!
//! **Call sites.** A recorded action's call site is the first application
//! frame of a backtrace taken on the thread that recorded it, where the
//! timeline captures backtraces (always in [`testing`](crate::testing)):
//! the line that awaited the query. sqlx emits SQLite statements' events on
//! its own worker thread, where no frame is the application's: their call
//! site is not reported, unless the application names the line with
//! [`with_call_site`](crate::WithCallSite::with_call_site).
//!
//! **Filters.** The layer filters for itself (it is a per-layer filtered
//! layer): it enables exactly the call sites it records, at whatever level
//! they use, and nothing else — other layers see only what their own
//! filters let through, and call sites nobody selects stay disabled and
//! cost nothing. This is what makes sqlx emit its DEBUG query event (sqlx
//! asks whether it is enabled before building it) while your log stays at
//! `info`. Two setups hide events from it, because `tracing_subscriber`
//! then never creates them:
//!
//! - a *global* filter layer, `registry().with(EnvFilter::new("info")).with(fmt::layer())`:
//!   it disables sqlx's DEBUG event for every layer. Put the `EnvFilter` on
//!   the fmt layer with `.with_filter(…)`, as above.
//! - `tracing_subscriber::fmt().with_env_filter(…).finish().with(…)`: the
//!   same global filter. Build the registry as above instead.
//!
//! # How a request's actions find its timeline
//!
//! The thread-local [`current()`](crate::current) timeline is not enough:
//! sqlx runs SQLite statements on its own worker thread and emits the
//! query event there, and `spawn_blocking` runs on another thread too. So
//! the timeline also travels with the `tracing` span context:
//!
//! 1. [`with_timeline`](crate::WithTimeline::with_timeline) and the tower
//!    layer create, when a `TimelineLayer` is installed, one span per
//!    request (target `timeline_core`, name `timeline`, level TRACE so that
//!    ordinary log filters do not print it), and enter it during every poll
//!    of the request's future. The layer stores the timeline in that span's
//!    extensions (`tracing_subscriber`'s per-span storage).
//! 2. Code that captures the current span and re-enters it elsewhere —
//!    sqlx's SQLite worker, `tokio::task::spawn_blocking` of a closure run
//!    with `Span::current().in_scope(…)`, `fut.in_current_span()` — carries
//!    the request span along.
//! 3. For each selected event, the layer takes the thread's current
//!    timeline, else walks the event's span scope out to the request span
//!    and takes its timeline. A selected span resolves its timeline the same
//!    way when it is created, so it may be entered on any thread.
//!
//! An event or span with neither — outside every request — is ignored.
//! Without a `TimelineLayer`, `with_timeline` creates no span: one load of
//! the global maximum level decides it.
//!
//! # Cost
//!
//! Call sites the layer does not select are disabled once, when first hit,
//! and cost every later call one load of their cached interest. Because the
//! request span is TRACE, the layer raises the global maximum level to
//! TRACE: a `trace!` nobody listens to then costs that load too, instead of
//! a comparison with the maximum level. A recorded sqlx event costs less
//! than formatting it with `tracing_subscriber::fmt` (`benches/bridge.rs`).
//! Spans and events that user code run by a timeline emits (a detail filter
//! that logs) are not recorded: recording them would run that code again.
//!
//! # Spans and events
//!
//! A selected **span** becomes an action when it is first entered, if it
//! belongs to a request then, and the action finishes when the span closes (its last handle
//! is dropped, on whatever thread). Fields recorded later with
//! `Span::record` count: the category and detail are read at the first
//! enter, the error when the span closes.
//!
//! A span whose rule names an [outcome field](Rule::outcome_field) ends
//! when the source records that field — sea-orm's `otel.status_code`,
//! reqwest-tracing's status — not when the span closes: sqlx's SQLite
//! worker keeps a clone of the caller's span until after it has sent the
//! rows, which would stretch the action and make the next statement look
//! concurrent. What the span records until it closes still corrects the
//! outcome (sea-orm records the error's text after the status). A span
//! whose rule is [timed by its driver](Rule::timed_by_driver) takes the
//! timing of the driver's event inside it: the action lasts what sqlx
//! measured and ends when sqlx's event fired.
//!
//! A selected **event** that carries a duration (`elapsed_secs = 0.002`, or
//! `?elapsed` written `2ms`) becomes an action that ended when the event
//! fired and started that long before (but not before the timeline
//! started). A missing or invalid duration
//! (negative, not a number, longer than a day) records a zero-length
//! action: the statement still counts.
//!
//! # Outcomes: what the source tells
//!
//! An action's outcome is an [`Error`](crate::Outcome::Error) with the
//! source's text when one of its rule's error templates renders. Otherwise
//! the rule says what silence means: a source that never reports success or
//! failure ([`Rule::outcome_not_reported`]: sqlx's event, tower-http's and
//! the AWS SDK's spans) gives
//! [`NotReported`](crate::Outcome::NotReported); one that records a field
//! when it knows ([`Rule::outcome_field`]: sea-orm, reqwest-tracing) gives
//! `Ok` once it did and `NotReported` if the span closed without it; your
//! own rules, with neither, take a span that closed (an event that fired)
//! without an error for a success, as before.
//!
//! # Work still running when the handler returns
//!
//! A thread with no timeline of its own — a driver's worker — that enters a
//! request's span (or a selected span created in a request, or the span
//! [`with_call_site`](crate::WithCallSite) made there) is counted on
//! that request's timeline as outstanding work until the bridge has
//! recorded its selected event, or until it leaves the spans. The tower
//! layer waits for it (bounded) before it makes the report, and seals the
//! timeline then: what arrives afterwards is counted in
//! [`Timeline::late`](crate::Timeline::late), never recorded there or on
//! another request. Spans the layer does not select (your own
//! `#[instrument]` spans) are invisible to it: work inside them is not
//! waited for.
//!
//! # Overlap
//!
//! Actions do not overlap, and the bridge never loses one to that rule:
//! an action that starts while another is unfinished — the queries of a
//! `join_all` — is stored as [concurrent](crate::Action::is_concurrent)
//! and the overlap is noted as a [`Violation`](crate::Violation). A span or
//! event *inside* the span of a recorded non-nesting action is part of that
//! action and not recorded again (sea-orm's span around sqlx's event).
//! Mark outer spans with [`Rule::nested`] to record them as nesting actions
//! that contain the inner ones.
//!
//! # Example
//!
//! ```
//! use timeline_core::Timeline;
//! use timeline_core::integrations::tracing::TimelineLayer;
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let subscriber = tracing_subscriber::registry().with(TimelineLayer::new());
//! let timeline = Timeline::new();
//! tracing::subscriber::with_default(subscriber, || {
//!     timeline.scope(|| {
//!         # std::thread::sleep(std::time::Duration::from_millis(3)); // older than the query
//!         // What sqlx emits when a query finishes:
//!         tracing::debug!(
//!             target: "sqlx::query",
//!             summary = "select * from bug …",
//!             db.statement = "\n\nselect * from bug where id = ?\n",
//!             rows_affected = 0,
//!             rows_returned = 1,
//!             elapsed_secs = 0.002,
//!         );
//!     })
//! });
//! let action = &timeline.actions()[0];
//! assert_eq!((action.category(), action.detail()), ("SQL-main", "select * from bug where id = ?"));
//! assert_eq!(action.duration(), Some(std::time::Duration::from_millis(2)));
//! ```

mod bridge;
pub mod presets;
mod rule;
mod values;

use std::any::TypeId;
use std::fmt;
use std::sync::Arc;

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::subscriber::Interest;
use tracing_core::{Dispatch, Event, LevelFilter, Metadata, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::filter::Filtered;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use bridge::{Bridge, Selection, SpanTimeline};
pub use rule::{Predicate, Rule};

/// Records selected spans and events as actions on the request's timeline;
/// see the [module documentation](self).
///
/// `S` is the subscriber the layer is added to; it is inferred from
/// `registry().with(…)` and defaults to [`Registry`].
pub struct TimelineLayer<S = Registry> {
    rules: Vec<Rule>,
    inner: Filtered<Bridge, Selection, S>,
}

impl<S> fmt::Debug for TimelineLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimelineLayer")
            .field("rules", &self.rules)
            .finish()
    }
}

impl<S> Default for TimelineLayer<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> TimelineLayer<S> {
    /// A layer with every [preset](presets::all): sqlx, sea-orm,
    /// reqwest-tracing, tower-http clients and the AWS SDK.
    ///
    /// ```
    /// use timeline_core::integrations::tracing::TimelineLayer;
    /// use tracing_subscriber::prelude::*;
    ///
    /// let subscriber = tracing_subscriber::registry().with(TimelineLayer::new());
    /// # drop(subscriber);
    /// ```
    pub fn new() -> Self {
        Self::with_rules(presets::all())
    }

    /// A layer that records nothing until given [`rule`](Self::rule)s.
    ///
    /// ```
    /// use timeline_core::integrations::tracing::{Rule, TimelineLayer};
    ///
    /// let layer: TimelineLayer = TimelineLayer::empty().rule(
    ///     Rule::spans().target("my_app::search").category("search").detail_field("query"),
    /// );
    /// # drop(layer);
    /// ```
    pub fn empty() -> Self {
        Self::with_rules(Vec::new())
    }

    /// Adds a rule; a span or event is recorded by the first rule that
    /// selects it, in the order they were added.
    ///
    /// ```
    /// use timeline_core::integrations::tracing::{Rule, TimelineLayer, presets};
    ///
    /// let layer: TimelineLayer = TimelineLayer::empty()
    ///     .rule(presets::sqlx())
    ///     .rule(Rule::spans().target("my_app::mail").name("send").category("SMTP-send"));
    /// # drop(layer);
    /// ```
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        Self::with_rules(self.rules)
    }

    fn with_rules(rules: Vec<Rule>) -> Self {
        let shared: Arc<[Rule]> = rules.clone().into();
        TimelineLayer {
            rules,
            inner: Filtered::new(
                Bridge {
                    rules: Arc::clone(&shared),
                },
                Selection { rules: shared },
            ),
        }
    }

    /// The rules, in the order they apply.
    ///
    /// ```
    /// use timeline_core::integrations::tracing::TimelineLayer;
    ///
    /// let layer: TimelineLayer = TimelineLayer::new();
    /// assert_eq!(layer.rules().len(), 5);
    /// ```
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// The timeline of the request whose `tracing` span is current on this
/// thread: what the layer follows onto other threads, for code that is
/// neither a span nor an event — a database hook on a blocking thread that
/// runs inside the request's span (`spawn_blocking` with
/// `Span::in_scope`, `deadpool`'s `interact` with its `tracing` feature).
///
/// `None` unless a [`TimelineLayer`] is installed on a
/// `tracing_subscriber::Registry` and the current span descends from a
/// request made with [`with_timeline`](crate::WithTimeline::with_timeline)
/// or the tower layer. Prefer [`current()`](crate::current), which is one
/// thread-local read; this walks the span's ancestors.
///
/// ```
/// use timeline_core::{Timeline, WithTimeline};
/// use timeline_core::integrations::tracing::{TimelineLayer, span_timeline};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// let subscriber = tracing_subscriber::registry().with(TimelineLayer::new());
/// tracing::subscriber::with_default(subscriber, || {
///     let timeline = Timeline::new();
///     // Inside the request, through its span (a blocking thread entered
///     // into that span finds it the same way).
///     let found = block_on(async { span_timeline() }.with_timeline(timeline.clone()));
///     assert!(Timeline::ptr_eq(&found.unwrap(), &timeline));
/// });
/// assert!(span_timeline().is_none());
/// ```
pub fn span_timeline() -> Option<crate::Timeline> {
    let span = tracing::Span::current();
    let id = span.id()?;
    tracing::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let span = registry.span(&id)?;
        span.scope().find_map(|ancestor| {
            let extensions = ancestor.extensions();
            extensions
                .get::<SpanTimeline>()
                .map(|SpanTimeline(timeline)| timeline.clone())
        })
    })
}

// Every method forwards to the filtered layer, so that `tracing_subscriber`
// treats this layer exactly as a per-layer filtered one.
impl<S> Layer<S> for TimelineLayer<S>
where
    S: Subscriber + for<'span> LookupSpan<'span> + 'static,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.inner.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.enabled(metadata, ctx)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_new_span(attrs, id, ctx);
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.inner.max_level_hint()
    }

    fn on_record(&self, span: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.inner.on_record(span, values, ctx);
    }

    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.inner.on_follows_from(span, follows, ctx);
    }

    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.event_enabled(event, ctx)
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.inner.on_event(event, ctx);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_exit(id, ctx);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.inner.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.inner.on_id_change(old, new, ctx);
    }

    // `tracing_subscriber` learns that a layer filters for itself only by
    // downcasting it to a private marker type; a layer that does not answer
    // is taken for an unfiltered one, which turns every call site that all
    // filters disable from "never" (decided once, cached) into "sometimes"
    // (every filter asked at every call) — a cost on every disabled `debug!`
    // of the program (see benches/bridge.rs). Safe code cannot forward the
    // question, hence this exception to `forbid(unsafe_code)`.
    #[allow(unsafe_code)]
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            return Some(self as *const Self as *const ());
        }
        // SAFETY: forwarded unchanged to the filtered layer this one owns;
        // whatever pointer it returns points into `self.inner`, which lives
        // exactly as long as `self`, as the trait requires.
        unsafe { self.inner.downcast_raw(id) }
    }
}
