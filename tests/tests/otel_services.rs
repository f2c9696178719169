//! W3C trace context across real services: two axum servers on loopback,
//! each with the tower layer exporting through its own SDK tracer provider;
//! A calls B with the injection helper, and B's spans join A's trace. Also
//! the layer's export policy, request by request.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use http_body_util::BodyExt;
use opentelemetry::Value;
use opentelemetry::trace::{SpanId, SpanKind, Status, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use timeline_core::integrations::opentelemetry::SpanExport;
use timeline_core::integrations::reqwest_middleware::TraceContextMiddleware;
use timeline_core::integrations::tower::RequestTimelineLayer;
use timeline_core::{Report, TraceContext, current};
use timeline_tests::otel::{attribute, in_memory_provider};
use timeline_tests::server::{HttpClient, client, serve};

/// One service's telemetry: its exported spans, summary lines and reports.
#[derive(Clone)]
struct Service {
    spans: InMemorySpanExporter,
    export: SpanExport,
    lines: Arc<Mutex<Vec<String>>>,
    reports: Arc<Mutex<Vec<Report>>>,
}

impl Service {
    fn new(configure: impl FnOnce(SpanExport) -> SpanExport) -> Service {
        let (spans, provider) = in_memory_provider();
        Service {
            spans,
            export: configure(SpanExport::new(provider.tracer("timeline"))),
            lines: Arc::default(),
            reports: Arc::default(),
        }
    }

    fn layer(&self) -> RequestTimelineLayer {
        let lines = Arc::clone(&self.lines);
        let reports = Arc::clone(&self.reports);
        RequestTimelineLayer::new()
            .export_spans(self.export.clone())
            .on_request(move |request| {
                lines
                    .lock()
                    .unwrap()
                    .push(request.timeline().summary().to_string());
            })
            .on_oops(move |_, report| reports.lock().unwrap().push(report))
    }

    /// The spans exported so far, once the export thread caught up.
    fn spans(&self) -> Vec<SpanData> {
        assert!(self.export.flush(Duration::from_secs(10)));
        self.spans.get_finished_spans().unwrap()
    }
}

async fn b_handler() -> &'static str {
    let timeline = current().expect("B's timeline");
    timeline
        .start("SQL-main", "SELECT * FROM bug WHERE id = 1")
        .unwrap()
        .finish();
    "bug 1\n"
}

async fn b_fails() -> StatusCode {
    let timeline = current().expect("B's timeline");
    timeline
        .start("SQL-main", "SELECT * FROM missing")
        .unwrap()
        .finish_with(timeline_core::Outcome::Error(
            "no such table: missing".into(),
        ));
    StatusCode::INTERNAL_SERVER_ERROR
}

#[derive(Clone)]
struct CallsB {
    b: SocketAddr,
    client: HttpClient,
}

/// A's handler: calls B, with the trace context injected before the call's
/// action starts, so that the request's span is the parent.
async fn a_handler(State(state): State<CallsB>) -> String {
    let url = format!("http://{}/bug", state.b);
    let mut request = Request::get(&url).body(Body::empty()).unwrap();
    assert!(TraceContext::inject_current(request.headers_mut()));
    let timeline = current().expect("A's timeline");
    let call = timeline.start("HTTP-GET", url).unwrap();
    let response = state.client.request(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    call.finish();
    String::from_utf8(body.to_vec()).unwrap()
}

async fn get_with(
    client: &HttpClient,
    address: SocketAddr,
    path: &str,
    traceparent: Option<&str>,
) -> StatusCode {
    let mut request = Request::get(format!("http://{address}{path}"));
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let response = client
        .request(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await;
    status
}

fn root(spans: &[SpanData]) -> &SpanData {
    spans
        .iter()
        .find(|span| span.span_kind == SpanKind::Server)
        .expect("a request span")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_joins_the_trace_of_a_which_calls_it_through_the_injection_helper() {
    let a = Service::new(|export| export);
    let b = Service::new(|export| export);
    let b_address = serve(Router::new().route("/bug", get(b_handler)).layer(b.layer())).await;
    let state = CallsB {
        b: b_address,
        client: client(),
    };
    let a_address = serve(
        Router::new()
            .route("/page", get(a_handler))
            .with_state(state)
            .layer(a.layer()),
    )
    .await;

    let incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    assert_eq!(
        get_with(&client(), a_address, "/page", Some(incoming)).await,
        StatusCode::OK
    );

    let a_spans = a.spans();
    let b_spans = b.spans();
    assert_eq!(a_spans.len(), 2, "A: request and its HTTP call");
    assert_eq!(b_spans.len(), 2, "B: request and its statement");
    let a_root = root(&a_spans);
    let b_root = root(&b_spans);
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    for span in a_spans.iter().chain(&b_spans) {
        assert_eq!(span.span_context.trace_id().to_string(), trace_id);
    }
    // A continues its caller; B, called from outside any action, hangs
    // under A's request span (`otel_calls.rs`: under the call's).
    assert_eq!(a_root.parent_span_id.to_string(), "b7ad6b7169203331");
    assert_eq!(b_root.parent_span_id, a_root.span_context.span_id());
    assert!(b_root.parent_span_is_remote);
    let call = a_spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Client)
        .unwrap();
    assert_eq!(call.parent_span_id, a_root.span_context.span_id());
    assert_eq!(
        attribute(call, "server.port"),
        Some(&Value::I64(i64::from(b_address.port())))
    );
    // The request spans say what they served.
    assert_eq!(a_root.name, "GET");
    assert_eq!(attribute(a_root, "url.path").unwrap().as_str(), "/page");
    assert_eq!(
        attribute(a_root, "http.response.status_code"),
        Some(&Value::I64(200))
    );
    assert_eq!(attribute(b_root, "url.path").unwrap().as_str(), "/bug");
    // B's call sits inside A's time.
    assert!(b_root.start_time >= call.start_time);
    assert!(b_root.end_time <= call.end_time);
    // Both summary lines name the trace.
    for lines in [&a.lines, &b.lines] {
        let lines = lines.lock().unwrap();
        assert!(
            lines[0].ends_with(&format!(", trace {trace_id}")),
            "{lines:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_traceparent_a_request_starts_a_trace_of_its_own() {
    let b = Service::new(|export| export);
    let address = serve(Router::new().route("/bug", get(b_handler)).layer(b.layer())).await;
    let client = client();
    for traceparent in [
        None,
        // Malformed ones are ignored as W3C says.
        Some("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"),
        Some("00-00000000000000000000000000000000-b7ad6b7169203331-01"),
        Some("garbage"),
    ] {
        assert_eq!(
            get_with(&client, address, "/bug", traceparent).await,
            StatusCode::OK
        );
    }
    let spans = b.spans();
    let roots: Vec<&SpanData> = spans
        .iter()
        .filter(|span| span.span_kind == SpanKind::Server)
        .collect();
    assert_eq!(roots.len(), 4);
    for root in &roots {
        assert_eq!(root.parent_span_id, SpanId::INVALID);
        assert_ne!(
            root.span_context.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
    }
    let mut trace_ids: Vec<_> = roots.iter().map(|r| r.span_context.trace_id()).collect();
    trace_ids.sort_by_key(|id| id.to_bytes());
    trace_ids.dedup();
    assert_eq!(trace_ids.len(), 4, "four new traces");
    // The summary line names the trace that was exported.
    let lines = b.lines.lock().unwrap();
    for root in roots {
        let trace_id = root.span_context.trace_id().to_string();
        assert!(
            lines.iter().any(|line| line.ends_with(&trace_id)),
            "{lines:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsampled_caller_is_honoured_except_for_oopses() {
    let b = Service::new(|export| export);
    let address = serve(
        Router::new()
            .route("/bug", get(b_handler))
            .route("/fails", get(b_fails))
            .layer(b.layer()),
    )
    .await;
    let client = client();
    let unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    assert_eq!(
        get_with(&client, address, "/bug", Some(unsampled)).await,
        StatusCode::OK
    );
    assert!(b.spans().is_empty(), "an unsampled, successful request");
    assert_eq!(
        get_with(&client, address, "/fails", Some(unsampled)).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let spans = b.spans();
    assert_eq!(spans.len(), 2, "an OOPS'd request is exported anyway");
    let root = root(&spans);
    assert_eq!(root.status, Status::error("HTTP 500"));
    assert_eq!(attribute(root, "error.type").unwrap().as_str(), "500");
    assert_eq!(
        attribute(root, "timeline.oops").unwrap().as_str(),
        "server error"
    );
    assert_eq!(
        root.span_context.trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    let statement = spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Client)
        .unwrap();
    assert_eq!(statement.status, Status::error("no such table: missing"));
    // The OOPS report links to the same trace.
    let reports = b.reports.lock().unwrap();
    assert_eq!(
        reports[0].trace_id().unwrap().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_fraction_exports_only_oopses_and_sampled_callers() {
    let b = Service::new(|export| export.sample_fraction(0.0));
    let address = serve(
        Router::new()
            .route("/bug", get(b_handler))
            .route("/fails", get(b_fails))
            .layer(b.layer()),
    )
    .await;
    let client = client();
    for _ in 0..5 {
        assert_eq!(
            get_with(&client, address, "/bug", None).await,
            StatusCode::OK
        );
    }
    assert!(b.spans().is_empty());
    // A sampled caller still decides for its own requests.
    let sampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    get_with(&client, address, "/bug", Some(sampled)).await;
    assert_eq!(b.spans().len(), 2);
    get_with(&client, address, "/fails", None).await;
    assert_eq!(b.spans().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_context_alone_names_the_trace_without_exporting() {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let injected = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&lines);
    let layer = RequestTimelineLayer::new()
        .trace_context(true)
        .on_request(move |request| {
            seen.lock()
                .unwrap()
                .push(request.timeline().summary().to_string());
        });
    let outgoing = Arc::clone(&injected);
    let handler = move || {
        let outgoing = Arc::clone(&outgoing);
        async move {
            let mut headers = http::HeaderMap::new();
            TraceContext::inject_current(&mut headers);
            let value = headers["traceparent"].to_str().unwrap().to_owned();
            outgoing.lock().unwrap().push(value);
            "ok"
        }
    };
    let address = serve(Router::new().route("/", get(handler)).layer(layer)).await;
    let incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    get_with(&client(), address, "/", Some(incoming)).await;
    let line = lines.lock().unwrap()[0].clone();
    assert!(
        line.ends_with(", trace 0af7651916cd43dd8448eb211c80319c"),
        "{line}"
    );
    let outgoing = injected.lock().unwrap()[0].clone();
    let child = TraceContext::parse(&outgoing, None).unwrap();
    assert_eq!(
        child.trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_ne!(
        child.parent_span_id().unwrap().to_string(),
        "b7ad6b7169203331"
    );
    assert!(child.is_sampled());
}

/// A's handler as it would be written with reqwest-middleware: the
/// middleware injects the trace context.
async fn a_with_middleware(State(b): State<SocketAddr>) -> String {
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(TraceContextMiddleware)
        .build();
    let response = client.get(format!("http://{b}/bug")).send().await.unwrap();
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reqwest_middleware_carries_the_trace_to_b() {
    let a = Service::new(|export| export);
    let b = Service::new(|export| export);
    let b_address = serve(Router::new().route("/bug", get(b_handler)).layer(b.layer())).await;
    let a_address = serve(
        Router::new()
            .route("/page", get(a_with_middleware))
            .with_state(b_address)
            .layer(a.layer()),
    )
    .await;
    assert_eq!(
        get_with(&client(), a_address, "/page", None).await,
        StatusCode::OK
    );
    let a_spans = a.spans();
    let b_spans = b.spans();
    let a_root = root(&a_spans);
    let b_root = root(&b_spans);
    assert_eq!(
        a_root.parent_span_id,
        SpanId::INVALID,
        "A started the trace"
    );
    assert_eq!(
        b_root.span_context.trace_id(),
        a_root.span_context.trace_id()
    );
    // The middleware recorded the call, whose span is B's parent.
    assert_eq!(a_spans.len(), 2, "A: request and its call");
    let call = a_spans
        .iter()
        .find(|s| s.span_kind == SpanKind::Client)
        .unwrap();
    assert_eq!(call.name, "HTTP-GET");
    assert_eq!(call.parent_span_id, a_root.span_context.span_id());
    assert_eq!(b_root.parent_span_id, call.span_context.span_id());

    // Outside any request, the middleware leaves requests alone.
    let seen = Arc::new(Mutex::new(None));
    let recorded = Arc::clone(&seen);
    let echo = move |headers: http::HeaderMap| {
        let recorded = Arc::clone(&recorded);
        async move {
            *recorded.lock().unwrap() = Some(headers.contains_key("traceparent"));
            "ok"
        }
    };
    let plain = serve(Router::new().route("/", get(echo))).await;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(TraceContextMiddleware)
        .build();
    client.get(format!("http://{plain}/")).send().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), Some(false));
}
