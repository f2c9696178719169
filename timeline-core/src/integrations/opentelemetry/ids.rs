//! Span ids chosen before the span exists: the span ids of the request
//! and of its calls go out in `traceparent` headers while the request
//! runs, and their spans are built only after the response. OpenTelemetry
//! 0.32's `SpanBuilder` takes no ids, so the SDK's `IdGenerator` hands over
//! the one staged here.

use std::cell::Cell;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

thread_local! {
    /// The id the next span built on this thread should get.
    static STAGED: Cell<Option<SpanId>> = const { Cell::new(None) };
}

/// An [`IdGenerator`] for the SDK's tracer provider that gives each
/// exported request span the span id its timeline's
/// [`TraceContext`](crate::TraceContext) already announced, and each
/// action that made an outgoing call the span id that call carried as its
/// parent in `traceparent` — so that the spans of the services called hang
/// under the call that reached them. Every other id is random, as with the
/// SDK's default [`RandomIdGenerator`].
///
/// Without it the export still continues the right trace, but a callee's
/// request span names a parent id that no exported span has.
///
/// ```
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use timeline_core::integrations::opentelemetry::TimelineIdGenerator;
///
/// let provider = SdkTracerProvider::builder()
///     .with_id_generator(TimelineIdGenerator::default())
///     .build();
/// # drop(provider);
/// ```
#[derive(Clone, Debug, Default)]
pub struct TimelineIdGenerator {
    random: RandomIdGenerator,
}

impl IdGenerator for TimelineIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        self.random.new_trace_id()
    }

    fn new_span_id(&self) -> SpanId {
        STAGED
            .try_with(Cell::take)
            .ok()
            .flatten()
            .unwrap_or_else(|| self.random.new_span_id())
    }
}

/// Runs `build` with `id` staged for the first span id asked for on this
/// thread; unstaged afterwards, also if `build` asked for none or panicked.
pub(super) fn with_span_id<R>(id: Option<SpanId>, build: impl FnOnce() -> R) -> R {
    struct Unstage;
    impl Drop for Unstage {
        fn drop(&mut self) {
            let _ = STAGED.try_with(|staged| staged.set(None));
        }
    }
    let _unstage = Unstage;
    let _ = STAGED.try_with(|staged| staged.set(id));
    build()
}
