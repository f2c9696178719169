//! A call site given by the application, for actions whose recorder cannot
//! find one: [`WithCallSite::with_call_site`] names the line that awaits a
//! future, and the bridges' actions recorded while it runs take that line.
//!
//! A bridge (the `tracing` layer, diesel's instrumentation) finds its
//! action's call site in a backtrace of the thread that records it. sqlx
//! runs SQLite statements on a worker thread of its own and emits its
//! event there, where no frame is the application's; nothing that runs on
//! the caller's thread in the meantime reaches the bridge inside the
//! application's frames (sqlx-sqlite 0.8's `fetch_one`, `fetch_optional`
//! and the `&mut SqliteConnection` paths send the statement to the worker
//! without entering a span or emitting an event). So the call site of
//! such a statement is not reported — unless the application says where
//! it is, which costs a span per query and no backtrace.
//!
//! The line travels in a thread-local while the future is polled, and with
//! the `tracing` feature in a span (target `timeline_core`, name
//! `call_site`), which the driver's worker re-enters around the statement;
//! the `TimelineLayer` makes the line the thread's while it is entered.

use std::cell::Cell;
use std::future::{self, Future};
use std::marker::PhantomData;
use std::panic::Location;
use std::pin::pin;

thread_local! {
    /// The call site the application named for what this thread records
    /// now, if any.
    static CALL_SITE: Cell<Option<&'static Location<'static>>> = const { Cell::new(None) };
}

/// The call site the application named for the actions this thread records
/// now: the line of a [`with_call_site`](WithCallSite::with_call_site)
/// whose future is being polled here, or whose span a driver's thread
/// entered.
#[inline]
pub(crate) fn scoped() -> Option<&'static Location<'static>> {
    CALL_SITE.try_with(Cell::get).ok().flatten()
}

/// Makes `location` this thread's call site until the guard is dropped,
/// which restores the one before.
pub(crate) fn enter(location: &'static Location<'static>) -> Scope {
    let previous = CALL_SITE
        .try_with(|site| site.replace(Some(location)))
        .ok()
        .flatten();
    Scope {
        previous,
        _not_send: PhantomData,
    }
}

/// The call site entered on this thread; see [`enter`].
pub(crate) struct Scope {
    previous: Option<&'static Location<'static>>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for Scope {
    fn drop(&mut self) {
        let _ = CALL_SITE.try_with(|site| site.set(self.previous));
    }
}

thread_local! {
    /// The spans that carry call sites entered on this thread, innermost
    /// last, each with the call site to restore when it is exited.
    static ENTERED_SPANS: std::cell::RefCell<Vec<(u64, Option<&'static Location<'static>>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The span `span` (its `tracing` id), carrying `location`, was entered on
/// this thread (a driver's worker re-entering the caller's span): it is the
/// thread's call site until [`exit_span`].
// The bridge (features `tower` and `tracing` together) calls these.
#[cfg_attr(not(all(feature = "tower", feature = "tracing")), allow(dead_code))]
pub(crate) fn enter_span(span: u64, location: &'static Location<'static>) {
    let previous = CALL_SITE
        .try_with(|site| site.replace(Some(location)))
        .ok()
        .flatten();
    let _ = ENTERED_SPANS.try_with(|spans| {
        if let Ok(mut spans) = spans.try_borrow_mut() {
            spans.push((span, previous));
        }
    });
}

/// The span `span` was exited on this thread: if it is the last one
/// [`enter_span`] saw here, the call site before it is restored. One
/// thread-local read for every other span, so that the layer can ask on
/// each exit.
#[cfg_attr(not(all(feature = "tower", feature = "tracing")), allow(dead_code))]
pub(crate) fn exit_span(span: u64) {
    let previous = ENTERED_SPANS
        .try_with(|spans| {
            let mut spans = spans.try_borrow_mut().ok()?;
            match spans.last() {
                Some((entered, _)) if *entered == span => spans.pop().map(|(_, site)| site),
                _ => None,
            }
        })
        .ok()
        .flatten();
    if let Some(previous) = previous {
        let _ = CALL_SITE.try_with(|site| site.set(previous));
    }
}

/// Names the line that awaits a future as the call site of the actions
/// that the bridges record while it runs: implemented for every future.
///
/// The bridges find a call site by themselves where the timeline captures
/// backtraces (always in [`testing`](crate::testing)) and the driver
/// reports on the caller's thread: diesel, sqlx on PostgreSQL,
/// reqwest-tracing. sqlx runs SQLite statements on a thread of its own,
/// where no backtrace can tell; there, and wherever backtraces are off,
/// this names the line, at the cost of a `tracing` span per query and no
/// backtrace. A call site so named takes precedence over a backtrace's.
///
/// ```
/// use timeline_core::{Timeline, WithCallSite, WithTimeline};
/// use timeline_core::integrations::tracing::TimelineLayer;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// // What sqlx emits when a query finishes, here on the polling thread.
/// async fn query() {
///     tracing::debug!(target: "sqlx::query", summary = "select 1", elapsed_secs = 0.001);
/// }
///
/// let subscriber = tracing_subscriber::registry().with(TimelineLayer::new());
/// let timeline = Timeline::new();
/// let line = line!() + 3;
/// tracing::subscriber::with_default(subscriber, || {
///     block_on(async {
///         query().with_call_site().await;
///     }.with_timeline(timeline.clone()));
/// });
/// let actions = timeline.actions();
/// let call_site = actions[0].call_site().unwrap();
/// assert_eq!((call_site.file(), call_site.line()), (file!(), line));
/// ```
///
/// With sqlx on SQLite, in a handler, it is `…fetch_one(&pool).with_call_site().await`
/// (the README shows it whole, and `tests/tests/call_sites.rs` runs it).
pub trait WithCallSite: Future + Sized {
    /// Wraps the future so that the caller's line is the call site of the
    /// actions recorded while it is polled, on this thread or on a driver's
    /// thread that re-enters its span.
    #[track_caller]
    fn with_call_site(self) -> impl Future<Output = Self::Output> {
        let location = Location::caller();
        async move {
            let span = span::CallSiteSpan::new(location);
            let mut inner = pin!(self);
            future::poll_fn(move |cx| {
                let _named = enter(location);
                let _in_span = span.enter();
                inner.as_mut().poll(cx)
            })
            .await
        }
    }
}

impl<F: Future> WithCallSite for F {}

#[cfg(all(feature = "tower", feature = "tracing"))]
pub(crate) use span::{NAME, TARGET};

#[cfg(feature = "tracing")]
mod span {
    use std::panic::Location;

    use tracing::level_filters::LevelFilter;

    /// The target of the call-site span.
    pub(crate) const TARGET: &str = "timeline_core";
    /// The name of the call-site span.
    pub(crate) const NAME: &str = "call_site";

    /// The span that carries a call site to the threads that re-enter it,
    /// or none when no subscriber wants it.
    pub(super) struct CallSiteSpan(tracing::Span);

    impl CallSiteSpan {
        /// A child of the current span, carrying `location`.
        pub(super) fn new(location: &'static Location<'static>) -> Self {
            // TRACE, as the request span: one load decides when no
            // `TimelineLayer` raised the maximum level.
            if LevelFilter::current() < LevelFilter::TRACE {
                return CallSiteSpan(tracing::Span::none());
            }
            // The thread's call site while the span is created: that is
            // how the layer learns which one the span carries.
            let _named = super::enter(location);
            CallSiteSpan(tracing::trace_span!(target: TARGET, NAME))
        }

        pub(super) fn enter(&self) -> tracing::span::Entered<'_> {
            self.0.enter()
        }
    }
}

#[cfg(not(feature = "tracing"))]
mod span {
    use std::panic::Location;

    /// Nothing: without the `tracing` feature the call site stays on the
    /// polling thread.
    pub(super) struct CallSiteSpan;

    /// Nothing entered.
    pub(super) struct NotEntered;

    impl CallSiteSpan {
        pub(super) fn new(_location: &'static Location<'static>) -> Self {
            CallSiteSpan
        }

        pub(super) fn enter(&self) -> NotEntered {
            NotEntered
        }
    }
}
