//! The current timeline: a thread-local stack, and a future adapter that
//! makes a timeline current while a future is polled.

use std::cell::{Cell, RefCell};
use std::future::{self, Future};
use std::marker::PhantomData;
use std::pin::pin;

use crate::Timeline;
use crate::carrier_span::CarrierSpan;

thread_local! {
    static CURRENT: RefCell<Vec<Timeline>> = const { RefCell::new(Vec::new()) };
    /// `CURRENT`'s length, kept beside it so that asking with no timeline
    /// current — `#[timed]` outside any request — is one plain read.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// The current timeline of this thread (or of the task being polled, under
/// [`WithTimeline::with_timeline`]), if any.
///
/// This is how code deep in a call stack records onto "the current request's
/// timeline" without passing it around.
///
/// ```
/// use timeline_core::{current, Timeline};
///
/// fn fetch_user() {
///     // Deep in the call stack: no timeline parameter needed.
///     if let Some(timeline) = current() {
///         let _guard = timeline.start("memcache-get", "user:42");
///     }
/// }
///
/// let timeline = Timeline::new();
/// timeline.scope(fetch_user);
/// assert_eq!(timeline.len(), 1);
/// assert!(current().is_none());
/// ```
#[inline]
pub fn current() -> Option<Timeline> {
    if DEPTH.try_with(Cell::get).unwrap_or(0) == 0 {
        return None;
    }
    CURRENT
        .try_with(|stack| stack.try_borrow().ok()?.last().cloned())
        .ok()
        .flatten()
}

/// Whether no timeline is current on this thread: one plain read. A
/// thread of a driver (sqlx's SQLite worker) has none; a request's own
/// polls have theirs.
#[inline]
#[cfg_attr(not(all(feature = "tower", feature = "tracing")), allow(dead_code))]
pub(crate) fn none_current() -> bool {
    DEPTH.try_with(Cell::get).unwrap_or(0) == 0
}

/// Wraps `f` so that it runs with the timeline that is current now, on
/// whatever thread it runs: the way to carry a request's timeline into
/// `tokio::task::spawn_blocking`, a thread pool or `std::thread::spawn`,
/// where blocking database calls happen.
///
/// With no current timeline, `f` runs with none.
///
/// ```
/// use timeline_core::{current, with_current, Timeline};
///
/// let timeline = Timeline::new();
/// timeline.scope(|| {
///     let query = with_current(|| {
///         current().unwrap().start("SQL-main", "SELECT 1").unwrap().finish();
///     });
///     std::thread::spawn(query).join().unwrap();
/// });
/// assert_eq!(timeline.len(), 1);
/// ```
pub fn with_current<R>(f: impl FnOnce() -> R) -> impl FnOnce() -> R {
    let timeline = current();
    move || match timeline {
        Some(timeline) => timeline.scope(f),
        None => f(),
    }
}

/// [`with_current`] for a closure that takes a `&mut` argument: the
/// connection that `deadpool_diesel`'s `interact` (and `deadpool-sync`'s
/// in general) lends the closure it runs on a blocking thread.
///
/// With no current timeline, `f` runs with none.
///
/// ```
/// use timeline_core::{current, with_current_mut, Timeline};
///
/// /// A pool's `interact`, in short: runs `f` on another thread, lending
/// /// it the connection (here a `String` to write to).
/// fn interact<R: Send + 'static>(f: impl FnOnce(&mut String) -> R + Send + 'static) -> R {
///     std::thread::spawn(move || f(&mut String::new())).join().unwrap()
/// }
///
/// let timeline = Timeline::new();
/// timeline.scope(|| {
///     interact(with_current_mut(|conn: &mut String| {
///         conn.push_str("SELECT 1");
///         current().unwrap().start("SQL-main", conn.clone()).unwrap().finish();
///     }))
/// });
/// assert_eq!(timeline.actions()[0].detail(), "SELECT 1");
/// ```
///
/// With `deadpool_diesel`, see `integrations::diesel` (feature `diesel`),
/// whose documentation runs it against the real pool.
pub fn with_current_mut<T: ?Sized, R>(f: impl FnOnce(&mut T) -> R) -> impl FnOnce(&mut T) -> R {
    let timeline = current();
    move |argument| match timeline {
        Some(timeline) => timeline.scope(|| f(argument)),
        None => f(argument),
    }
}

/// Makes a timeline the current one of this thread until it is dropped; see
/// [`Timeline::enter`].
///
/// The guard is not `Send`: the current timeline belongs to a thread.
///
/// ```compile_fail
/// use timeline_core::Timeline;
///
/// let timeline = Timeline::new();
/// let entered = timeline.enter();
/// std::thread::spawn(move || drop(entered));
/// ```
#[must_use = "dropping the guard makes the previous timeline current again"]
#[derive(Debug)]
pub struct EnterGuard {
    /// The stack's length with this guard's timeline on top.
    depth: usize,
    _not_send: PhantomData<*const ()>,
}

impl Timeline {
    /// Makes this timeline the current one of this thread until the guard is
    /// dropped; entering another one inside restores this one afterwards.
    ///
    /// ```
    /// use timeline_core::{current, Timeline};
    ///
    /// let request = Timeline::new();
    /// let _entered = request.enter();
    /// assert!(Timeline::ptr_eq(&current().unwrap(), &request));
    /// {
    ///     let background = Timeline::new();
    ///     let _inner = background.enter();
    ///     assert!(Timeline::ptr_eq(&current().unwrap(), &background));
    /// }
    /// assert!(Timeline::ptr_eq(&current().unwrap(), &request));
    /// ```
    pub fn enter(&self) -> EnterGuard {
        let timeline = self.clone();
        let depth = CURRENT
            .try_with(|stack| {
                let mut stack = stack.try_borrow_mut().ok()?;
                stack.push(timeline);
                DEPTH.set(stack.len());
                Some(stack.len())
            })
            .ok()
            .flatten()
            // Thread teardown: nothing to enter, and nothing to pop later.
            .unwrap_or(usize::MAX);
        EnterGuard {
            depth,
            _not_send: PhantomData,
        }
    }

    /// Runs `f` with this timeline current, and returns what it returns.
    ///
    /// ```
    /// use timeline_core::{current, Timeline};
    ///
    /// let timeline = Timeline::new();
    /// let n = timeline.scope(|| {
    ///     current().unwrap().start("SQL-main", "SELECT count(*) FROM bug").unwrap().finish();
    ///     42
    /// });
    /// assert_eq!((n, timeline.len()), (42, 1));
    /// ```
    pub fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _entered = self.enter();
        f()
    }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        if self.depth == usize::MAX {
            return;
        }
        // Popped one by one and dropped outside the borrow: a timeline's
        // last handle may drop a detail filter, which is user code that may
        // look at the stack. Dropping an outer guard first exits the inner
        // scopes too.
        loop {
            let popped = CURRENT
                .try_with(|stack| match stack.try_borrow_mut() {
                    Ok(mut stack) if stack.len() >= self.depth => {
                        let popped = stack.pop();
                        let _ = DEPTH.try_with(|depth| depth.set(stack.len()));
                        popped
                    }
                    _ => None,
                })
                .ok()
                .flatten();
            if popped.is_none() {
                break;
            }
        }
    }
}

/// Makes a timeline current while a future is polled, on whatever thread
/// the executor polls it. Implemented for every [`Future`]; needs no
/// particular runtime.
///
/// ```
/// use timeline_core::{current, Timeline, WithTimeline};
///
/// async fn handler() {
///     let timeline = current().expect("the request's timeline");
///     timeline.start("SQL-main", "SELECT 1").unwrap().finish();
/// }
///
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// let timeline = Timeline::new();
/// block_on(handler().with_timeline(timeline.clone()));
/// assert_eq!(timeline.len(), 1);
/// ```
pub trait WithTimeline: Future + Sized {
    /// Wraps the future so that `timeline` is current during every poll of
    /// it, and only then.
    ///
    /// With the `tracing` feature and its `TimelineLayer` installed, the
    /// future also runs inside a `timeline` span that carries the timeline
    /// to threads that re-enter the span (sqlx's SQLite worker); see
    /// `integrations::tracing`. Without them, no span: one load of the
    /// global maximum level decides it.
    fn with_timeline(self, timeline: Timeline) -> impl Future<Output = Self::Output>;

    /// Wraps the future so that the timeline current now (if any) is current
    /// during every poll of it: the way to carry a request's timeline into
    /// `tokio::spawn`.
    ///
    /// ```
    /// use timeline_core::{current, Timeline, WithTimeline};
    ///
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// let timeline = Timeline::new();
    /// let task = timeline.scope(|| {
    ///     async { current().unwrap().start("HTTP-get", "/a").unwrap().finish() }.with_current_timeline()
    /// });
    /// block_on(task); // polled later, elsewhere: still records onto `timeline`
    /// assert_eq!(timeline.len(), 1);
    /// ```
    fn with_current_timeline(self) -> impl Future<Output = Self::Output> {
        let timeline = current();
        async move {
            match timeline {
                Some(timeline) => self.with_timeline(timeline).await,
                None => self.await,
            }
        }
    }
}

impl<F: Future> WithTimeline for F {
    async fn with_timeline(self, timeline: Timeline) -> F::Output {
        // Carries the timeline in the span context too, for work the future
        // hands to other threads inside its span (see
        // `integrations::tracing`); nothing without a `TimelineLayer`.
        let span = CarrierSpan::new(&timeline);
        let mut inner = pin!(self);
        future::poll_fn(move |cx| {
            let _entered = timeline.enter();
            let _in_span = span.enter();
            inner.as_mut().poll(cx)
        })
        .await
    }
}
