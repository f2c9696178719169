//! The `tracing` span that carries a request's timeline, so that work the
//! request hands to other threads inside its span context — sqlx's SQLite
//! worker, `spawn_blocking` with `in_current_span` — still lands on it.
//!
//! `with_timeline` and the tower layer create one per request and enter it
//! during every poll; the tracing feature's `TimelineLayer` stores the
//! timeline in the span's extensions when it is created. Without the
//! `tracing` feature this is a zero-sized no-op.

use crate::Timeline;

#[cfg(feature = "tracing")]
pub(crate) use with_tracing::*;
#[cfg(not(feature = "tracing"))]
pub(crate) use without_tracing::*;

#[cfg(feature = "tracing")]
mod with_tracing {
    use super::Timeline;
    use tracing::level_filters::LevelFilter;

    /// The target of the request span.
    pub(crate) const TARGET: &str = "timeline_core";
    /// The name of the request span.
    pub(crate) const NAME: &str = "timeline";

    /// A request's span, or none when no subscriber wants it.
    #[derive(Clone)]
    pub(crate) struct CarrierSpan(tracing::Span);

    impl CarrierSpan {
        /// The span of a request recorded on `timeline`, a child of the
        /// current span.
        #[inline]
        pub(crate) fn new(timeline: &Timeline) -> Self {
            // The span is TRACE: with no `TimelineLayer` installed the global
            // maximum level is usually lower, and this one load decides.
            if LevelFilter::current() < LevelFilter::TRACE {
                return CarrierSpan(tracing::Span::none());
            }
            // Current while the span is created: that is how the layer
            // learns which timeline the span carries.
            let _current = timeline.enter();
            CarrierSpan(tracing::trace_span!(target: TARGET, NAME))
        }

        /// Enters the span until the guard is dropped.
        #[inline]
        pub(crate) fn enter(&self) -> tracing::span::Entered<'_> {
            self.0.enter()
        }
    }
}

#[cfg(not(feature = "tracing"))]
mod without_tracing {
    use super::Timeline;

    /// Nothing: without the `tracing` feature a request has no span.
    #[derive(Clone)]
    pub(crate) struct CarrierSpan;

    /// Nothing entered.
    pub(crate) struct NotEntered;

    impl CarrierSpan {
        #[inline]
        pub(crate) fn new(_timeline: &Timeline) -> Self {
            CarrierSpan
        }

        #[inline]
        pub(crate) fn enter(&self) -> NotEntered {
            NotEntered
        }
    }
}
