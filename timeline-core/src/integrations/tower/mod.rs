//! A [`tower::Layer`](tower_layer::Layer) that gives every HTTP request its
//! own timeline, current while the handler runs, and turns it into a
//! `Server-Timing` header, a log line per request and an OOPS report for
//! requests that fail or run too long.
//!
//! ```
//! use std::time::Duration;
//! use timeline_core::integrations::tower::RequestTimelineLayer;
//!
//! let layer = RequestTimelineLayer::new()
//!     .server_timing(true)
//!     .soft_time_limit(Duration::from_secs(2))
//!     .on_request(|request| {
//!         eprintln!("{} {} {}", request.method(), request.uri(), request.timeline().summary());
//!     })
//!     .on_oops(|request, report| {
//!         eprintln!("OOPS for {}: {:?}", request.uri(), request.oops_reason());
//!         # let _ = report;
//!     });
//! // axum: Router::new().route(…).layer(layer)
//! # drop(layer);
//! ```
//!
//! # What the layer does per request
//!
//! 1. Builds a new [`Timeline`] (see
//!    [`timeline_builder`](RequestTimelineLayer::timeline_builder)) — or,
//!    when a timeline is already current as the request is called (a test
//!    that drives the whole app under
//!    [`testing::run_async`](crate::testing::run_async), an outer
//!    layer), takes that one — and makes it current while the inner service is called and while its future is
//!    polled, on whatever worker thread polls it. Blocking work moved to
//!    `spawn_blocking` takes it along with [`with_current`](crate::with_current).
//!    With the `tracing` feature and a `TimelineLayer` installed, the
//!    handler also runs inside a `timeline` span that carries the timeline
//!    to threads that re-enter it (sqlx's SQLite worker); see
//!    `integrations::tracing`.
//! 2. When the handler has returned, **settles** the timeline (see below),
//!    then adds a `Server-Timing` header with the time per category (only
//!    if enabled and the timeline holds actions; never a detail).
//! 3. Calls [`on_request`](RequestTimelineLayer::on_request) with the
//!    finished request — also for a handler that panicked or a request whose
//!    client went away.
//! 4. Calls [`on_oops`](RequestTimelineLayer::on_oops) with the
//!    [`Report`] when the response is a 5xx, the service
//!    failed or panicked, or the request ran past the soft time limit
//!    (Launchpad's soft-timeout OOPS).
//! 5. Leaves [`TimelineStats`] (action count, duration, OOPS id) in the
//!    response's extensions, for access-log layers outside.
//!
//! The report carries the request ([`RequestContext`](crate::RequestContext)):
//! method, path (its query string only through the timeline's detail
//! filter), status, reason and error; [`FinishedRequest::log_line`] is the
//! log line, ending with the OOPS id when a report was made. With
//! [`viewer`](RequestTimelineLayer::viewer), the layer also serves the
//! recent requests and the running ones as pages.
//!
//! A panic in the handler is reported and then resumed, so whatever catches
//! panics outside the layer still sees it. Nothing stays current on a worker
//! thread after a poll, whether the request completes, fails or is dropped.
//!
//! # Settle: every statement on the timeline before the report
//!
//! A driver may still be recording a request's work when the handler
//! returns: sqlx's SQLite worker sends a failed `INSERT`'s error to the
//! caller *before* it emits the query event, on its own thread, inside the
//! request's span. With a `TimelineLayer` installed, the bridge counts a
//! thread with no timeline of its own that is inside a span of the request
//! as outstanding work, until it has recorded that thread's event or the
//! thread left the span. When the handler returns, the layer waits until
//! none is left, at most [`settle_timeout`](RequestTimelineLayer::settle_timeout)
//! (100 ms by default), before the header, the report, the log line and
//! the OOPS hook are made — so they all show that statement. With nothing
//! outstanding, the usual case, this is one atomic load: no wait, no timer.
//! A response future that waits returns `Pending` and is woken by the last
//! work to end, or by a timer thread (one per process, started the first
//! time a request waits) at the deadline: a span entered on a thread that
//! never leaves it delays its request by the timeout, no more; a span that
//! is never entered again delays nothing.
//!
//! Then the layer **seals** the timeline it made: what the bridges bring
//! afterwards is counted in [`Timeline::late`] (and the report's `late`)
//! instead of stored, never recorded on another request's timeline. What is
//! not waited for: work in spans of your own that the `TimelineLayer` does
//! not select (it sees only its own and the request's spans), and work in
//! no request's span at all, such as a pool's background tasks, which
//! records on no timeline. A request dropped before it completed (the
//! client went away) is reported at once, without settling. A timeline the
//! layer did not make (a test driving the app under
//! [`testing::run_async`](crate::testing::run_async)) settles but is not
//! sealed: it goes on after the request.

use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::carrier_span::CarrierSpan;
use crate::{Report, Timeline, TimelineBuilder};

mod context;
mod settle;
mod trace;
mod viewer;

pub use context::TimelineStats;
pub use viewer::{ViewerFuture, ViewerLayer, ViewerOptions, ViewerService};

type RequestHook = dyn Fn(&FinishedRequest) + Send + Sync;
type OopsHook = dyn Fn(&FinishedRequest, Report) + Send + Sync;
type NewTimeline = dyn Fn() -> Timeline + Send + Sync;

/// Gives every request its own timeline; see the [module documentation](self).
#[derive(Clone)]
pub struct RequestTimelineLayer {
    config: Arc<Config>,
}

#[derive(Clone)]
struct Config {
    server_timing: bool,
    soft_time_limit: Option<Duration>,
    on_request: Option<Arc<RequestHook>>,
    on_oops: Option<Arc<OopsHook>>,
    new_timeline: Arc<NewTimeline>,
    viewer: Option<Arc<viewer::Recent>>,
    /// W3C trace context and OpenTelemetry export: see `trace.rs`.
    trace: trace::TraceConfig,
    /// How long a request waits for outstanding work: see `settle.rs`.
    settle_timeout: Duration,
}

impl Default for RequestTimelineLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RequestTimelineLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestTimelineLayer")
            .field("server_timing", &self.config.server_timing)
            .field("soft_time_limit", &self.config.soft_time_limit)
            .field("on_request", &self.config.on_request.is_some())
            .field("on_oops", &self.config.on_oops.is_some())
            .finish_non_exhaustive()
    }
}

impl RequestTimelineLayer {
    /// A layer that gives each request a default [`Timeline`], adds no
    /// header and calls no hook until configured.
    pub fn new() -> Self {
        RequestTimelineLayer {
            config: Arc::new(Config {
                server_timing: false,
                soft_time_limit: None,
                on_request: None,
                on_oops: None,
                new_timeline: Arc::new(Timeline::new),
                viewer: None,
                trace: Default::default(),
                settle_timeout: settle::DEFAULT_TIMEOUT,
            }),
        }
    }

    fn with(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(Arc::make_mut(&mut self.config));
        self
    }

    /// Add a `Server-Timing` header with the time per category to every
    /// response whose timeline holds actions (default `false`).
    ///
    /// ```
    /// # use timeline_core::integrations::tower::RequestTimelineLayer;
    /// let layer = RequestTimelineLayer::new().server_timing(true);
    /// # drop(layer);
    /// ```
    pub fn server_timing(self, enabled: bool) -> Self {
        self.with(|config| config.server_timing = enabled)
    }

    /// How long a request waits, at most, for work still recording onto
    /// its timeline when its handler returns (default 100 ms); zero turns
    /// the wait off. See "Settle" in the [module documentation](self).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use timeline_core::integrations::tower::RequestTimelineLayer;
    /// let layer = RequestTimelineLayer::new().settle_timeout(Duration::from_millis(20));
    /// # drop(layer);
    /// ```
    pub fn settle_timeout(self, timeout: Duration) -> Self {
        self.with(|config| config.settle_timeout = timeout)
    }

    /// Report requests that take longer than `limit`, even when they
    /// succeed, to [`on_oops`](Self::on_oops).
    pub fn soft_time_limit(self, limit: Duration) -> Self {
        self.with(|config| config.soft_time_limit = Some(limit))
    }

    /// Called once for every request when it ends: responded, failed,
    /// panicked or dropped. The place for the per-request log line,
    /// `request.timeline().summary()`.
    pub fn on_request(self, hook: impl Fn(&FinishedRequest) + Send + Sync + 'static) -> Self {
        self.with(|config| config.on_request = Some(Arc::new(hook)))
    }

    /// Called with the OOPS [`Report`] of every request that answered with a
    /// 5xx status, failed, panicked, or ran past the
    /// [`soft_time_limit`](Self::soft_time_limit). Runs before
    /// [`on_request`](Self::on_request), on the thread that finished the
    /// request: hand slow work (writing, uploading) to another thread.
    pub fn on_oops(self, hook: impl Fn(&FinishedRequest, Report) + Send + Sync + 'static) -> Self {
        self.with(|config| config.on_oops = Some(Arc::new(hook)))
    }

    /// How to build each request's timeline, e.g. with backtraces or a
    /// detail filter.
    ///
    /// ```
    /// # use timeline_core::integrations::tower::RequestTimelineLayer;
    /// use timeline_core::Timeline;
    ///
    /// let layer = RequestTimelineLayer::new()
    ///     .timeline_builder(|| Timeline::builder().max_actions(10_000).capture_backtraces(true));
    /// # drop(layer);
    /// ```
    pub fn timeline_builder(
        self,
        builder: impl Fn() -> TimelineBuilder + Send + Sync + 'static,
    ) -> Self {
        self.with(|config| config.new_timeline = Arc::new(move || builder().build()))
    }

    /// Give each request's timeline a W3C [`TraceContext`](crate::TraceContext)
    /// (default `false`): it continues the trace of a valid incoming
    /// `traceparent` (and `tracestate`), and starts a new trace otherwise —
    /// a malformed header is ignored, never an error. The summary line and
    /// OOPS reports then name the trace id, and
    /// [`TraceContext::inject_current`](crate::TraceContext::inject_current)
    /// carries the trace on to the services the handler calls.
    ///
    /// ```
    /// # use timeline_core::integrations::tower::RequestTimelineLayer;
    /// let layer = RequestTimelineLayer::new()
    ///     .trace_context(true)
    ///     .on_request(|request| eprintln!("{}", request.timeline().summary())); // "…, trace 4bf9…"
    /// # drop(layer);
    /// ```
    pub fn trace_context(self, enabled: bool) -> Self {
        self.with(|config| config.trace.enabled = enabled)
    }

    /// Export the requests that `export`'s policy chooses as OpenTelemetry
    /// spans (feature `opentelemetry`), after their response, on the export's
    /// own thread. Implies [`trace_context(true)`](Self::trace_context): the
    /// request span continues the caller's trace, and its sampled decision
    /// goes downstream.
    ///
    /// The request span is a server span named after the method, with
    /// `http.request.method`, `url.path`, `http.response.status_code`, an
    /// error status for 5xx responses, failures and panics, and
    /// `timeline.oops` naming why a request deserved an OOPS report.
    ///
    /// ```
    /// use opentelemetry::trace::TracerProvider as _;
    /// use opentelemetry_sdk::trace::SdkTracerProvider;
    /// use timeline_core::integrations::opentelemetry::{SpanExport, TimelineIdGenerator};
    /// use timeline_core::integrations::tower::RequestTimelineLayer;
    ///
    /// let provider = SdkTracerProvider::builder()
    ///     .with_id_generator(TimelineIdGenerator::default())
    ///     // .with_batch_exporter(opentelemetry_otlp::SpanExporter::builder().with_http().build()?)
    ///     .build();
    /// let export = SpanExport::new(provider.tracer("timeline")).sample_fraction(0.1);
    /// let layer = RequestTimelineLayer::new().export_spans(export);
    /// # drop(layer);
    /// ```
    #[cfg(feature = "opentelemetry")]
    pub fn export_spans(self, export: super::opentelemetry::SpanExport) -> Self {
        self.with(|config| {
            config.trace.enabled = true;
            config.trace.export = Some(export);
        })
    }
}

impl<S> Layer<S> for RequestTimelineLayer {
    type Service = RequestTimelineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestTimelineService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service of [`RequestTimelineLayer`].
#[derive(Clone)]
pub struct RequestTimelineService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for RequestTimelineService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestTimelineService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestTimelineService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: fmt::Display,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // A timeline already current is the caller's: a test driving the
        // whole app under `testing::run_async`, or an outer layer. The
        // request records onto it instead of onto one nobody reads.
        let (timeline, own_timeline) = match crate::current() {
            Some(timeline) => (timeline, false),
            None => ((self.config.new_timeline)(), true),
        };
        let method = request.method().clone();
        let uri = request.uri().clone();
        let started = Instant::now();
        self.config.trace.start(&timeline, request.headers());
        let span = CarrierSpan::new(&timeline);
        let viewer_id = (self.config.viewer.as_ref()).map(|v| v.start(&method, &uri, &timeline));
        let mut unreported = Unreported(Some(InFlight {
            timeline: timeline.clone(),
            own_timeline,
            span: span.clone(),
            config: Arc::clone(&self.config),
            method,
            uri,
            started,
            viewer_id,
        }));
        // Services may do work in `call`, not only in the future, and may
        // panic there too: that request is reported like one whose future
        // panicked.
        let called = panic::catch_unwind(AssertUnwindSafe(|| {
            timeline.scope(|| {
                let _in_span = span.enter();
                self.inner.call(request)
            })
        }));
        match called {
            Ok(inner) => ResponseFuture {
                inner,
                ending: None,
                request: unreported,
            },
            Err(panic) => {
                if let Some(request) = unreported.0.take() {
                    request.end_panicked(&*panic);
                }
                panic::resume_unwind(panic);
            }
        }
    }
}

pin_project! {
    /// The response future of [`RequestTimelineService`].
    pub struct ResponseFuture<F>
    where
        F: Future,
    {
        #[pin]
        inner: F,
        // The inner future's output (or panic) while the request settles.
        ending: Option<Ending<F::Output>>,
        // Dropped after `inner`: a request dropped in flight is reported
        // with whatever the inner future finished while being dropped.
        request: Unreported,
    }
}

/// How the inner future ended, kept while the request settles.
struct Ending<O> {
    result: Result<O, Box<dyn std::any::Any + Send>>,
    settling: settle::Settling,
}

impl<F: Future> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// A request that has not ended yet; reported as dropped if it never does.
struct InFlight {
    timeline: Timeline,
    /// Whether the layer made the timeline (else it is the caller's, which
    /// goes on after this request and is not sealed).
    own_timeline: bool,
    /// Carries the timeline in the span context (feature `tracing`).
    span: CarrierSpan,
    config: Arc<Config>,
    method: Method,
    uri: Uri,
    started: Instant,
    /// The request's number in the viewer, if there is one.
    viewer_id: Option<u64>,
}

/// The request of a response future, until it is reported: reported as
/// dropped if the future is dropped first.
struct Unreported(Option<InFlight>);

impl Drop for Unreported {
    fn drop(&mut self) {
        if let Some(request) = self.0.take() {
            let _ = request.end(RequestEnd::Dropped);
        }
    }
}

impl InFlight {
    fn end_panicked(self, payload: &(dyn std::any::Any + Send)) {
        let message = context::panic_message(payload);
        self.end_with(RequestEnd::Panicked, message);
    }

    fn end(self, end: RequestEnd) -> Option<String> {
        self.end_with(end, None)
    }

    /// From now on, what the bridges bring is late: the report, the log
    /// line and `Server-Timing` are made of what the timeline holds now.
    fn seal(&self) {
        if self.own_timeline {
            self.timeline.seal();
        }
    }

    /// Ends the request: the OOPS report, the viewer, the hooks. Returns
    /// the OOPS id if a report was made.
    fn end_with(self, end: RequestEnd, panic_message: Option<String>) -> Option<String> {
        self.seal();
        let mut finished = FinishedRequest {
            method: self.method,
            uri: self.uri,
            end,
            elapsed: self.started.elapsed(),
            soft_time_limit: self.config.soft_time_limit,
            timeline: self.timeline,
            panic_message,
            oops_id: None,
        };
        let oops = finished.oops_reason().is_some();
        let on_oops = self.config.on_oops.as_ref().filter(|_| oops);
        let viewer = self.config.viewer.as_ref().zip(self.viewer_id);
        let report = (on_oops.is_some() || viewer.is_some()).then(|| {
            let report = finished.timeline.report();
            report.with_request(finished.report_context())
        });
        if oops {
            finished.oops_id = report.as_ref().map(|r| r.id().to_owned());
        }
        // Hooks are user code: instrumentation must never break the
        // request, so a panicking hook is contained.
        if let (Some(on_oops), Some(report)) = (on_oops, &report) {
            let report = report.clone();
            let _ = panic::catch_unwind(AssertUnwindSafe(|| on_oops(&finished, report)));
        }
        if let (Some((viewer, id)), Some(report)) = (viewer, report) {
            viewer.finish(id, &finished, report);
        }
        if let Some(on_request) = &self.config.on_request {
            let _ = panic::catch_unwind(AssertUnwindSafe(|| on_request(&finished)));
        }
        self.config.trace.finish(&finished);
        finished.oops_id
    }
}

const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    E: fmt::Display,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(request) = this.request.0.as_ref() else {
            panic!("ResponseFuture polled after it completed");
        };
        let result = match this.ending.take() {
            None => {
                let inner = this.inner;
                let polled = {
                    let _entered = request.timeline.enter();
                    let _in_span = request.span.enter();
                    panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx)))
                };
                let result = match polled {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(output)) => Ok(output),
                    Err(panic) => Err(panic),
                };
                // The settle step. Nothing outstanding, the common case,
                // costs this one load: no wait, no timer.
                let timeout = request.config.settle_timeout;
                if timeout.is_zero() || settle::is_settled(&request.timeline) {
                    result
                } else {
                    let mut ending = Ending {
                        result,
                        settling: settle::Settling::new(timeout),
                    };
                    if ending.settling.poll(&request.timeline, cx).is_pending() {
                        *this.ending = Some(ending);
                        return Poll::Pending;
                    }
                    ending.result
                }
            }
            Some(mut ending) => {
                if ending.settling.poll(&request.timeline, cx).is_pending() {
                    *this.ending = Some(ending);
                    return Poll::Pending;
                }
                ending.result
            }
        };
        let Some(request) = this.request.0.take() else {
            unreachable!("checked above")
        };
        let output = match result {
            Ok(output) => output,
            Err(panic) => {
                request.end_panicked(&*panic);
                panic::resume_unwind(panic);
            }
        };
        request.seal();
        match output {
            Ok(mut response) => {
                if request.config.server_timing && !request.timeline.is_empty() {
                    if let Ok(value) = HeaderValue::from_str(&request.timeline.server_timing()) {
                        response.headers_mut().append(SERVER_TIMING, value);
                    }
                }
                let timeline = request.timeline.clone();
                let oops_id = request.end(RequestEnd::Responded(response.status()));
                response.extensions_mut().insert(TimelineStats {
                    action_count: context::action_count(&timeline),
                    duration: timeline.elapsed(),
                    oops_id,
                });
                Poll::Ready(Ok(response))
            }
            Err(error) => {
                let _ = request.end(RequestEnd::Failed(error.to_string()));
                Poll::Ready(Err(error))
            }
        }
    }
}

/// How a request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestEnd {
    /// The service answered with this status.
    Responded(StatusCode),
    /// The service failed with this error (no response).
    Failed(String),
    /// The handler panicked.
    Panicked,
    /// The request was dropped before it ended, e.g. the client went away.
    Dropped,
}

/// Why a request's report went to [`on_oops`](RequestTimelineLayer::on_oops).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OopsReason {
    /// A 5xx response.
    ServerError(StatusCode),
    /// The service failed with this error.
    Failed(String),
    /// The handler panicked.
    Panicked,
    /// The request took longer than the soft time limit.
    SoftTimeout {
        /// How long the request took.
        elapsed: Duration,
        /// The limit it exceeded.
        limit: Duration,
    },
}

/// A request that has ended, as handed to the layer's hooks.
#[derive(Debug)]
pub struct FinishedRequest {
    method: Method,
    uri: Uri,
    end: RequestEnd,
    elapsed: Duration,
    soft_time_limit: Option<Duration>,
    timeline: Timeline,
    /// The message of the handler's panic, if it panicked with one.
    panic_message: Option<String>,
    oops_id: Option<String>,
}

impl FinishedRequest {
    /// The request's method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request's URI.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// How the request ended.
    pub fn end(&self) -> &RequestEnd {
        &self.end
    }

    /// The response status, if the service answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self.end {
            RequestEnd::Responded(status) => Some(status),
            _ => None,
        }
    }

    /// From the call of the service to the end of the request.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The request's timeline: `timeline().summary()` is the log line.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// Why this request deserves an OOPS report, if it does.
    pub fn oops_reason(&self) -> Option<OopsReason> {
        match &self.end {
            RequestEnd::Responded(status) if status.is_server_error() => {
                return Some(OopsReason::ServerError(*status));
            }
            RequestEnd::Failed(error) => return Some(OopsReason::Failed(error.clone())),
            RequestEnd::Panicked => return Some(OopsReason::Panicked),
            RequestEnd::Responded(_) | RequestEnd::Dropped => {}
        }
        let limit = self.soft_time_limit?;
        (self.elapsed > limit).then_some(OopsReason::SoftTimeout {
            elapsed: self.elapsed,
            limit,
        })
    }
}
