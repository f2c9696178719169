//! A finished timeline as OpenTelemetry spans, for Jaeger, Tempo, Honeycomb,
//! Datadog or any OTLP collector (feature `opentelemetry`).
//!
//! [`export`] turns a timeline into one span for the request and one child
//! span per action, with the times the timeline measured, and hands them to
//! any [`opentelemetry::trace::Tracer`]: every exporter and processor of the
//! ecosystem works unchanged. The library has no transport of its own.
//!
//! ```
//! use opentelemetry::trace::TracerProvider as _;
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
//! use timeline_core::integrations::opentelemetry::{export, RequestSpan, TimelineIdGenerator};
//! use timeline_core::{TraceContext, Timeline};
//!
//! let spans = InMemorySpanExporter::default();
//! let provider = SdkTracerProvider::builder()
//!     .with_simple_exporter(spans.clone())
//!     .with_id_generator(TimelineIdGenerator::default())
//!     .build();
//! let tracer = provider.tracer("timeline");
//!
//! let timeline = Timeline::new();
//! timeline.set_trace_context(TraceContext::new_trace(true));
//! timeline.start("SQL-main", "SELECT * FROM bug WHERE id = 1").unwrap().finish();
//! timeline.start("HTTP-GET", "https://api.example.com/users/7").unwrap().finish();
//!
//! export(&timeline, &tracer, RequestSpan::new("GET /bugs/1"));
//! let spans = spans.get_finished_spans().unwrap();
//! assert_eq!(spans.len(), 3);
//! assert!(spans.iter().all(|span| span.span_context.trace_id().to_bytes()
//!     == timeline.trace_id().unwrap().to_bytes()));
//! ```
//!
//! # The spans
//!
//! - **The request span** starts at the timeline's start
//!   ([`Timeline::baseline`]) and ends at the request's end
//!   ([`RequestSpan::end`]). It continues the timeline's
//!   [`TraceContext`]: the same trace id, the caller's
//!   span as its parent, and — with [`TimelineIdGenerator`] installed in the
//!   SDK — the span id the request sent downstream in `traceparent`. A
//!   timeline without a trace context gets a new trace from the SDK.
//! - **A call's span is the parent of the service it called.** An action
//!   that made an outgoing call got a span id of its own when the call was
//!   made, which the call named as its parent in `traceparent`
//!   ([`ActionGuard::trace_context`](crate::ActionGuard::trace_context),
//!   `TraceContext::inject_current`, the reqwest middleware); with
//!   [`TimelineIdGenerator`] installed, that action's span gets that id
//!   ([`Snapshot::call_span_id`](crate::Snapshot::call_span_id)), so the
//!   called service's request span hangs under the call's span. A call
//!   made outside any action names the request span. Every other span id
//!   is drawn by the SDK.
//! - **One child span per action**, named after its category, from its
//!   start to its end (an unfinished action ends at the export, marked
//!   `timeline.unfinished`). Actions inside a nesting action
//!   ([`Timeline::start_nested`]) are its children; everything else,
//!   concurrent actions included, are siblings under the request span.
//! - **Status**: an action that ended with [`Outcome::Error`] or
//!   [`Outcome::Panicked`] has an error status with the text; a cancelled one
//!   has `timeline.outcome = "cancelled"`, one whose source did not report
//!   how it ended ([`Outcome::NotReported`]: sqlx's statements)
//!   `timeline.outcome = "not_reported"`, both with the status unset;
//!   successes leave the status unset, as the conventions ask of
//!   instrumentation (never `Ok`).
//! - **Attributes** follow the semantic conventions by category family:
//!   `SQL…` categories are database client spans (`db.system.name`,
//!   `db.query.text`), `HTTP-<method>` categories HTTP client spans
//!   (`http.request.method`, `url.full` with credentials redacted,
//!   `server.address`, `server.port`). Every span carries
//!   `timeline.category`; other details go in `timeline.detail`; a captured
//!   backtrace goes in `code.stacktrace`.
//! - **Details** are what the timeline stored, so its
//!   [`detail_filter`](crate::TimelineBuilder::detail_filter) has already
//!   run; [`RequestSpan::detail_filter`] adds one for the export only (e.g.
//!   to strip literal values before they leave the process).
//!
//! # In a service
//!
//! With the `tower` feature, [`SpanExport`] gives the request layer a tracer
//! and a policy, and exports each chosen request after its response, on a
//! thread of its own: see
//! [`RequestTimelineLayer::export_spans`](crate::integrations::tower::RequestTimelineLayer::export_spans).

mod ids;
pub(crate) mod semconv;
mod worker;

pub use ids::TimelineIdGenerator;
pub use worker::SpanExport;

use std::borrow::Cow;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _,
    TraceFlags, TraceId, TraceState, Tracer,
};
use opentelemetry::{Context, KeyValue};

use crate::{Action, Outcome, Timeline, TraceContext};

type DetailFilter = dyn Fn(&str) -> String + Send + Sync;

/// The request span of an [`export`]: its name, kind, attributes, status
/// and end, and an export-only detail filter.
///
/// ```
/// use std::time::Duration;
/// use opentelemetry::KeyValue;
/// use opentelemetry::trace::SpanKind;
/// use timeline_core::integrations::opentelemetry::RequestSpan;
///
/// let request = RequestSpan::new("GET")
///     .kind(SpanKind::Server)
///     .attribute(KeyValue::new("url.path", "/bugs/1"))
///     .error("HTTP 503")
///     .end(Duration::from_millis(40))
///     .detail_filter(|detail| detail.replace("hunter2", "***"));
/// # drop(request);
/// ```
#[derive(Clone)]
pub struct RequestSpan {
    name: Cow<'static, str>,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
    status: Status,
    end: Option<Duration>,
    detail_filter: Option<Arc<DetailFilter>>,
}

impl fmt::Debug for RequestSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSpan")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("attributes", &self.attributes)
            .field("status", &self.status)
            .field("end", &self.end)
            .field("detail_filter", &self.detail_filter.is_some())
            .finish()
    }
}

impl RequestSpan {
    /// A server span named `name` (for HTTP, the conventions say
    /// `{method} {route}`, or the method alone), with no attributes, an
    /// unset status, ending when exported.
    pub fn new(name: impl Into<Cow<'static, str>>) -> RequestSpan {
        RequestSpan {
            name: name.into(),
            kind: SpanKind::Server,
            attributes: Vec::new(),
            status: Status::Unset,
            end: None,
            detail_filter: None,
        }
    }

    /// The span kind (default [`SpanKind::Server`]; a job or a consumer of
    /// a queue may prefer `Internal` or `Consumer`).
    pub fn kind(mut self, kind: SpanKind) -> RequestSpan {
        self.kind = kind;
        self
    }

    /// Adds an attribute to the request span.
    pub fn attribute(mut self, attribute: KeyValue) -> RequestSpan {
        self.attributes.push(attribute);
        self
    }

    /// Marks the request as failed, with this description.
    pub fn error(mut self, description: impl Into<Cow<'static, str>>) -> RequestSpan {
        self.status = Status::error(description);
        self
    }

    /// When the request ended, as an offset from the timeline's start
    /// (default: the timeline's elapsed time when it is exported).
    pub fn end(mut self, offset: Duration) -> RequestSpan {
        self.end = Some(offset);
        self
    }

    /// Applies `filter` to every detail before it is exported (after the
    /// timeline's own detail filter ran when the action was stored). A
    /// filter that panics exports `<detail filter panicked>` instead.
    pub fn detail_filter(
        mut self,
        filter: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> RequestSpan {
        self.detail_filter = Some(Arc::new(filter));
        self
    }

    /// The exported form of a detail.
    fn detail(&self, action: &Action) -> Cow<'static, str> {
        match &self.detail_filter {
            None => action.detail_cow(),
            Some(filter) => panic::catch_unwind(AssertUnwindSafe(|| filter(action.detail())))
                .map_or(Cow::Borrowed("<detail filter panicked>"), Cow::Owned),
        }
    }
}

/// Exports `timeline` through `tracer`: the request span, then one child
/// span per action, with the times the timeline measured; returns the
/// request span's context. See the [module documentation](self) for what
/// the spans hold.
///
/// Building spans costs about a microsecond per action with the SDK: call
/// it after the response has gone, off the request's path (the `tower`
/// layer's [`SpanExport`] does). A snapshot of the timeline is exported;
/// actions recorded later are not.
///
/// # Panics
///
/// Only if the tracer, a span processor or an exporter panics — user
/// code, whose panic goes on to the caller as from any callback. The
/// request span is ended first, and the spans of the actions not yet
/// exported are lost; a second panic while ending the request span is
/// discarded, so a panicking processor cannot abort the process.
/// [`SpanExport`] catches such panics and counts them in
/// [`SpanExport::panicked`]. (One case stays out of reach: a processor
/// whose `on_start` panics makes the SDK drop, and so end, the span it
/// was starting; if its `on_end` panics as well, the SDK aborts.)
///
/// ```
/// use opentelemetry::trace::TracerProvider as _;
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
/// use timeline_core::integrations::opentelemetry::{export, RequestSpan};
/// use timeline_core::Timeline;
///
/// let spans = InMemorySpanExporter::default();
/// let provider = SdkTracerProvider::builder().with_simple_exporter(spans.clone()).build();
///
/// let timeline = Timeline::new();
/// let transaction = timeline.start_nested("SQL-main", "transaction").unwrap();
/// timeline.start("SQL-main", "INSERT INTO bug VALUES (1)").unwrap().finish();
/// transaction.finish();
///
/// let request = export(&timeline, &provider.tracer("timeline"), RequestSpan::new("POST"));
/// let spans = spans.get_finished_spans().unwrap();
/// let insert = spans.iter().find(|s| s.attributes.iter().any(|a| a.value.as_str().starts_with("INSERT"))).unwrap();
/// let transaction = spans.iter().find(|s| s.attributes.iter().any(|a| a.value.as_str() == "transaction")).unwrap();
/// assert_eq!(insert.parent_span_id, transaction.span_context.span_id());
/// assert_eq!(transaction.parent_span_id, request.span_id());
/// ```
pub fn export<T: Tracer>(timeline: &Timeline, tracer: &T, request: RequestSpan) -> SpanContext {
    // One read: the actions, the calls' span ids and the end agree.
    let snapshot = timeline.snapshot();
    let baseline = snapshot.baseline();
    let at = |offset: Duration| baseline.checked_add(offset).unwrap_or(baseline);
    let actions = snapshot.actions();
    let end = request.end.unwrap_or_else(|| snapshot.elapsed());
    let trace = snapshot.trace_context();

    let mut attributes = request.attributes.clone();
    attributes.push(KeyValue::new(
        semconv::TIMELINE_ACTIONS,
        i64::try_from(actions.len()).unwrap_or(i64::MAX),
    ));
    let dropped = snapshot.dropped();
    if dropped > 0 {
        attributes.push(KeyValue::new(
            semconv::TIMELINE_DROPPED,
            i64::try_from(dropped).unwrap_or(i64::MAX),
        ));
    }
    let builder = SpanBuilder::from_name(request.name.clone())
        .with_kind(request.kind.clone())
        .with_start_time(baseline)
        .with_attributes(attributes);
    let parent = trace.map_or_else(Context::new, parent_context);
    let own_id = trace.map(|t| SpanId::from_bytes(t.span_id().to_bytes()));
    let mut root = ids::with_span_id(own_id, || tracer.build_with_context(builder, &parent));
    let root_context = root.span_context().clone();
    let root_parent = Context::new().with_remote_span_context(root_context.clone());

    // The tracer, its processors and exporters are user code, called while
    // the request span is open. A panic there must not unwind past that
    // span: its `Drop` would end it, calling the same code again, and a
    // second panic while the first unwinds aborts the process.
    let children = panic::catch_unwind(AssertUnwindSafe(|| {
        // The nesting actions still open at the current action's start: its
        // parent is the innermost.
        let mut open: Vec<(Duration, Context)> = Vec::new();
        for (index, action) in actions.iter().enumerate() {
            while open.last().is_some_and(|(end, _)| *end <= action.start()) {
                open.pop();
            }
            let parent = open.last().map_or(&root_parent, |(_, cx)| cx);
            // A call's span gets the id its call named as parent.
            let call_id = snapshot
                .call_span_id(index)
                .map(|id| SpanId::from_bytes(id.to_bytes()));
            let builder = span_builder(action, &request, at);
            let mut span =
                ids::with_span_id(call_id, || tracer.build_with_context(builder, parent));
            if let Some(status) = status(action.outcome()) {
                span.set_status(status);
            }
            if action.is_nested() {
                let context = Context::new().with_remote_span_context(span.span_context().clone());
                open.push((action.end(), context));
            }
            span.end_with_timestamp(at(action.end()));
        }
    }));
    root.set_status(request.status.clone());
    match children {
        Ok(()) => {
            root.end_with_timestamp(at(end));
            root_context
        }
        Err(panic) => {
            // The request span still ends, so that the callees' spans have
            // their parent; if that panics too, the first panic is the one
            // worth reporting.
            let _ = panic::catch_unwind(AssertUnwindSafe(move || {
                root.end_with_timestamp(at(end));
            }));
            panic::resume_unwind(panic)
        }
    }
}

/// The span of one action, ready to be built.
fn span_builder(
    action: &Action,
    request: &RequestSpan,
    at: impl Fn(Duration) -> SystemTime,
) -> SpanBuilder {
    let family = semconv::family(action.category());
    let mut attributes = Vec::with_capacity(4);
    attributes.push(KeyValue::new(
        semconv::TIMELINE_CATEGORY,
        action.category_cow(),
    ));
    semconv::attributes(action, family, request.detail(action), &mut attributes);
    if action.is_nested() {
        attributes.push(KeyValue::new(semconv::TIMELINE_NESTED, true));
    }
    if action.is_concurrent() {
        attributes.push(KeyValue::new(semconv::TIMELINE_CONCURRENT, true));
    }
    if action.duration().is_none() {
        attributes.push(KeyValue::new(semconv::TIMELINE_UNFINISHED, true));
    }
    // Neither is an error, nor a success to claim: the status stays unset
    // and the attribute says which.
    match action.outcome() {
        Outcome::Cancelled => {
            attributes.push(KeyValue::new(semconv::TIMELINE_OUTCOME, "cancelled"));
        }
        Outcome::NotReported => {
            attributes.push(KeyValue::new(semconv::TIMELINE_OUTCOME, "not_reported"));
        }
        _ => {}
    }
    if let Some(call_site) = action.call_site() {
        // Without line tables a call site from a backtrace knows only its
        // function: no file, line or column is claimed then.
        if call_site.has_location() {
            attributes.push(KeyValue::new(
                semconv::CODE_FILE_PATH,
                call_site.file().to_owned(),
            ));
            attributes.push(KeyValue::new(
                semconv::CODE_LINE_NUMBER,
                i64::from(call_site.line()),
            ));
            attributes.push(KeyValue::new(
                semconv::CODE_COLUMN_NUMBER,
                i64::from(call_site.column()),
            ));
        }
        if let Some(function) = call_site.function() {
            attributes.push(KeyValue::new(
                semconv::CODE_FUNCTION_NAME,
                function.to_owned(),
            ));
        }
    }
    if let Some(backtrace) = action.backtrace() {
        attributes.push(KeyValue::new(
            semconv::CODE_STACKTRACE,
            backtrace.to_owned(),
        ));
    }
    SpanBuilder::from_name(action.category_cow())
        .with_kind(semconv::kind(action))
        .with_start_time(at(action.start()))
        .with_attributes(attributes)
}

/// The span status of an outcome; `None` leaves it unset.
fn status(outcome: &Outcome) -> Option<Status> {
    match outcome {
        Outcome::Ok | Outcome::Cancelled | Outcome::NotReported => None,
        Outcome::Error(message) => Some(Status::error(message.clone())),
        Outcome::Panicked => Some(Status::error("panicked")),
    }
}

/// W3C's `random-trace-id` trace flag (Level 2), which
/// `opentelemetry::trace::TraceFlags` has no constant for yet.
const RANDOM_TRACE_ID: u8 = 0x02;

/// The parent of the request span: the caller's span, remote; or for a
/// trace that started here, a context holding only the trace id, so that
/// the SDK keeps it (a span context with an invalid span id parents
/// nothing: the request span is the trace's root). Either way flagged
/// sampled — the timeline's policy already chose to export — so that the
/// SDK's default `ParentBased` sampler follows that choice.
fn parent_context(trace: &TraceContext) -> Context {
    let trace_id = TraceId::from_bytes(trace.trace_id().to_bytes());
    // The SDK copies the parent's flags into its children: the Level 2
    // `random-trace-id` flag then reaches the exported spans too.
    let flags = TraceFlags::new(if trace.is_random() {
        RANDOM_TRACE_ID
    } else {
        0
    })
    .with_sampled(true);
    let state = trace
        .tracestate()
        .and_then(|state| state.parse::<TraceState>().ok())
        .unwrap_or_default();
    let span_context = match trace.parent_span_id() {
        Some(parent) => SpanContext::new(
            trace_id,
            SpanId::from_bytes(parent.to_bytes()),
            flags,
            true,
            state,
        ),
        None => SpanContext::new(trace_id, SpanId::INVALID, flags, false, state),
    };
    Context::new().with_remote_span_context(span_context)
}
