//! The tower layer's trace context and span export: what the layer does
//! with `traceparent` when a request starts, and with the OpenTelemetry
//! export when it ends. Kept apart from `mod.rs`, which only calls in.

use http::HeaderMap;

use super::FinishedRequest;
use crate::{Timeline, TraceContext};

/// The layer's trace settings: off unless enabled.
#[derive(Clone, Default)]
pub(super) struct TraceConfig {
    /// Read `traceparent` / `tracestate`, or start a trace.
    pub(super) enabled: bool,
    #[cfg(feature = "opentelemetry")]
    pub(super) export: Option<crate::integrations::opentelemetry::SpanExport>,
}

impl TraceConfig {
    /// When a request starts: attach its trace context to its timeline,
    /// continuing the caller's valid `traceparent` or starting a trace.
    #[inline]
    pub(super) fn start(&self, timeline: &Timeline, headers: &HeaderMap) {
        if !self.enabled {
            return;
        }
        let incoming = TraceContext::from_headers(headers);
        #[cfg(feature = "opentelemetry")]
        if let Some(export) = &self.export {
            timeline.set_trace_context(export.start_context(incoming));
            return;
        }
        // Nothing is recorded for a new trace without an export: unsampled.
        timeline.set_trace_context(incoming.unwrap_or_else(|| TraceContext::new_trace(false)));
    }

    /// When a request has ended: queue its export, if the policy chooses it.
    #[inline]
    pub(super) fn finish(&self, request: &FinishedRequest) {
        #[cfg(feature = "opentelemetry")]
        if let Some(export) = &self.export {
            export::finish(export, request);
        }
        #[cfg(not(feature = "opentelemetry"))]
        let _ = request;
    }
}

#[cfg(feature = "opentelemetry")]
mod export {
    use opentelemetry::KeyValue;

    use super::FinishedRequest;
    use crate::integrations::opentelemetry::semconv::{
        ERROR_TYPE, HTTP_REQUEST_METHOD, HTTP_RESPONSE_STATUS_CODE, TIMELINE_OOPS,
        TIMELINE_OUTCOME, URL_PATH,
    };
    use crate::integrations::opentelemetry::{RequestSpan, SpanExport};
    use crate::integrations::tower::{OopsReason, RequestEnd};

    pub(super) fn finish(export: &SpanExport, request: &FinishedRequest) {
        let timeline = request.timeline();
        let oops = request.oops_reason();
        if !export.chooses(timeline.trace_context().as_ref(), oops.is_some()) {
            return;
        }
        let method = request.method().as_str().to_owned();
        let mut span = RequestSpan::new(method.clone())
            .end(timeline.elapsed())
            .attribute(KeyValue::new(HTTP_REQUEST_METHOD, method))
            .attribute(KeyValue::new(URL_PATH, request.uri().path().to_owned()));
        if let Some(status) = request.status() {
            span = span.attribute(KeyValue::new(
                HTTP_RESPONSE_STATUS_CODE,
                i64::from(status.as_u16()),
            ));
        }
        match &oops {
            Some(OopsReason::ServerError(status)) => {
                span = span
                    .error(format!("HTTP {}", status.as_u16()))
                    .attribute(KeyValue::new(ERROR_TYPE, status.as_u16().to_string()));
            }
            Some(OopsReason::Failed(error)) => span = span.error(error.clone()),
            Some(OopsReason::Panicked) => span = span.error("panicked"),
            Some(OopsReason::SoftTimeout { .. }) | None => {}
        }
        if let Some(oops) = &oops {
            let reason = match oops {
                OopsReason::ServerError(_) => "server error",
                OopsReason::Failed(_) => "failed",
                OopsReason::Panicked => "panicked",
                OopsReason::SoftTimeout { .. } => "soft timeout",
            };
            span = span.attribute(KeyValue::new(TIMELINE_OOPS, reason));
        }
        if *request.end() == RequestEnd::Dropped {
            span = span.attribute(KeyValue::new(TIMELINE_OUTCOME, "dropped"));
        }
        export.export(timeline.clone(), span);
    }
}
