//! Each outgoing call an operation of its own, as W3C's processing model
//! asks, across two real services on loopback, each exporting its
//! timelines through the SDK's in-memory exporter: a request to A calls B
//! twice, and each of B's two request spans must be the child of the
//! exported span of the call in A that reached it — two calls, two distinct
//! parent ids, each equal to the span id of A's call action.
//!
//! Once for every way a call becomes an action: the reqwest middleware
//! alone; reqwest-tracing's span recorded by the `tracing` bridge, with the
//! middleware inside it; tower-http's client span recorded by the bridge,
//! with `inject_current` in a `map_request` inside it; an action started by
//! hand with `inject_current` inside it; a `#[timed]` wrapper calling
//! `inject_current`; and two calls through the middleware at once.

use std::net::SocketAddr;
use std::sync::Once;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Request, StatusCode};
use axum::routing::get;
use http_body_util::BodyExt;
use opentelemetry::Value;
use opentelemetry::trace::{SpanId, SpanKind, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_tracing::{SpanBackendWithUrl, TracingMiddleware};
use timeline_core::integrations::opentelemetry::SpanExport;
use timeline_core::integrations::reqwest_middleware::TraceContextMiddleware;
use timeline_core::integrations::tower::RequestTimelineLayer;
use timeline_core::integrations::tracing::TimelineLayer;
use timeline_core::{TraceContext, current, timed};
use timeline_tests::otel::{attribute, in_memory_provider};
use timeline_tests::server::{HttpClient, client, serve};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::trace::TraceLayer;
use tracing_subscriber::prelude::*;

/// The `tracing` bridge, for the cases whose calls are spans: global,
/// since axum serves each connection on a task of its own; harmless to the
/// others, which emit no span it selects.
fn install_bridge() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing_subscriber::registry()
            .with(TimelineLayer::new())
            .init();
    });
}

/// One service: its request layer exports every request to memory.
struct Service {
    spans: InMemorySpanExporter,
    export: SpanExport,
}

impl Service {
    fn new() -> Service {
        let (spans, provider) = in_memory_provider();
        Service {
            spans,
            export: SpanExport::new(provider.tracer("timeline")),
        }
    }

    fn layer(&self) -> RequestTimelineLayer {
        RequestTimelineLayer::new().export_spans(self.export.clone())
    }

    fn spans(&self) -> Vec<SpanData> {
        assert!(self.export.flush(Duration::from_secs(10)));
        self.spans.get_finished_spans().unwrap()
    }
}

/// B: one statement per request.
async fn bug(Path(n): Path<u32>) -> String {
    current()
        .expect("B's timeline")
        .start("SQL-main", "SELECT * FROM bug WHERE id = ?")
        .unwrap()
        .finish();
    format!("bug {n}")
}

/// How A calls B.
#[derive(Clone, Copy, Debug)]
enum Via {
    Middleware,
    ReqwestTracing,
    TowerHttp,
    ActionByHand,
    Timed,
    MiddlewareAtOnce,
}

#[derive(Clone)]
struct A {
    b: SocketAddr,
    via: Via,
    middleware: ClientWithMiddleware,
    reqwest_tracing: ClientWithMiddleware,
    hyper: HttpClient,
}

async fn hyper_get(client: &HttpClient, request: Request<Body>) -> String {
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[timed(category = "HTTP-GET", detail = "{url}")]
async fn timed_get(client: &HttpClient, url: &str) -> String {
    let mut request = Request::get(url).body(Body::empty()).unwrap();
    assert!(TraceContext::inject_current(request.headers_mut()));
    hyper_get(client, request).await
}

impl A {
    async fn get(&self, n: u32) -> String {
        let url = format!("http://{}/bugs/{n}", self.b);
        match self.via {
            Via::Middleware | Via::MiddlewareAtOnce => {
                let response = self.middleware.get(&url).send().await.unwrap();
                response.text().await.unwrap()
            }
            Via::ReqwestTracing => {
                let response = self.reqwest_tracing.get(&url).send().await.unwrap();
                response.text().await.unwrap()
            }
            Via::TowerHttp => {
                let client = ServiceBuilder::new()
                    .layer(TraceLayer::new_for_http())
                    .map_request(|mut request: Request<Body>| {
                        assert!(TraceContext::inject_current(request.headers_mut()));
                        request
                    })
                    .service(self.hyper.clone());
                let request = Request::get(&url).body(Body::empty()).unwrap();
                let response = client.oneshot(request).await.unwrap();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                String::from_utf8(body.to_vec()).unwrap()
            }
            Via::ActionByHand => {
                let call = current()
                    .expect("A's timeline")
                    .start("HTTP-GET", url.clone())
                    .unwrap();
                let mut request = Request::get(&url).body(Body::empty()).unwrap();
                assert!(TraceContext::inject_current(request.headers_mut()));
                let body = hyper_get(&self.hyper, request).await;
                call.finish();
                body
            }
            Via::Timed => timed_get(&self.hyper, &url).await,
        }
    }
}

/// A's page: two calls to B, one after the other or both at once.
async fn page(State(a): State<A>) -> String {
    let (one, two) = match a.via {
        Via::MiddlewareAtOnce => tokio::join!(a.get(1), a.get(2)),
        _ => (a.get(1).await, a.get(2).await),
    };
    format!("{one}, {two}")
}

fn server_span<'a>(spans: &'a [SpanData], path: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|span| {
            span.span_kind == SpanKind::Server
                && attribute(span, "url.path").is_some_and(|p| p.as_str() == path)
        })
        .unwrap_or_else(|| panic!("no request span for {path}: {spans:#?}"))
}

/// Runs a request to A that calls B twice `via` one way, and checks the
/// trace both services exported. Returns A's call spans, 1 then 2.
async fn two_calls(via: Via) -> Vec<SpanData> {
    install_bridge();
    let a_service = Service::new();
    let b_service = Service::new();
    let b = serve(
        Router::new()
            .route("/bugs/{n}", get(bug))
            .layer(b_service.layer()),
    )
    .await;
    let with_middleware = ClientBuilder::new(reqwest::Client::new())
        .with(TraceContextMiddleware)
        .build();
    // reqwest-tracing outside: the middleware runs inside its span.
    let with_reqwest_tracing = ClientBuilder::new(reqwest::Client::new())
        .with(TracingMiddleware::<SpanBackendWithUrl>::new())
        .with(TraceContextMiddleware)
        .build();
    let state = A {
        b,
        via,
        middleware: with_middleware,
        reqwest_tracing: with_reqwest_tracing,
        hyper: client(),
    };
    let a = serve(
        Router::new()
            .route("/page", get(page))
            .with_state(state)
            .layer(a_service.layer()),
    )
    .await;

    let incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let request = Request::get(format!("http://{a}/page"))
        .header("traceparent", incoming)
        .body(Body::empty())
        .unwrap();
    assert_eq!(hyper_get(&client(), request).await, "bug 1, bug 2");

    let a_spans = a_service.spans();
    let b_spans = b_service.spans();
    let a_root = server_span(&a_spans, "/page");
    for span in a_spans.iter().chain(&b_spans) {
        assert_eq!(
            span.span_context.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c",
            "{via:?}"
        );
    }
    assert_eq!(a_root.parent_span_id.to_string(), "b7ad6b7169203331");
    // Each call recorded once: A did nothing else.
    let calls: Vec<&SpanData> = a_spans
        .iter()
        .filter(|span| span.span_kind == SpanKind::Client)
        .collect();
    assert_eq!(calls.len(), 2, "{via:?}: {a_spans:#?}");
    let mut parents = Vec::new();
    let mut ordered = Vec::new();
    for n in 1..=2 {
        let url = format!("http://{b}/bugs/{n}");
        let call = calls
            .iter()
            .find(|span| attribute(span, "url.full").is_some_and(|u| u.as_str() == url))
            .unwrap_or_else(|| panic!("{via:?}: no call to {url}: {calls:#?}"));
        assert_eq!(call.name, "HTTP-GET");
        assert_eq!(
            call.parent_span_id,
            a_root.span_context.span_id(),
            "{via:?}"
        );
        let b_root = server_span(&b_spans, &format!("/bugs/{n}"));
        // The heart of it: B's request hangs under the call that reached it.
        assert_eq!(
            b_root.parent_span_id,
            call.span_context.span_id(),
            "{via:?}: B's request {n} is not the child of A's call {n}"
        );
        assert!(b_root.parent_span_is_remote);
        assert_ne!(b_root.parent_span_id, a_root.span_context.span_id());
        // B's statement hangs under B's request.
        let statement = b_spans
            .iter()
            .find(|span| {
                span.span_kind == SpanKind::Client
                    && span.parent_span_id == b_root.span_context.span_id()
            })
            .unwrap_or_else(|| panic!("{via:?}: no statement under B's request {n}"));
        assert_eq!(statement.name, "SQL-main");
        parents.push(b_root.parent_span_id);
        ordered.push((*call).clone());
    }
    assert_ne!(parents[0], parents[1], "{via:?}: two calls, two parents");
    assert!(parents.iter().all(|&p| p != SpanId::INVALID));
    ordered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reqwest_middleware_makes_each_call_a_span_of_its_own() {
    let calls = two_calls(Via::Middleware).await;
    for call in &calls {
        assert_eq!(
            attribute(call, "http.request.method").unwrap().as_str(),
            "GET"
        );
        assert!(attribute(call, "timeline.concurrent").is_none());
    }
    assert!(
        calls[0].end_time <= calls[1].start_time,
        "one after the other"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_reqwest_tracing_the_middleware_uses_the_bridges_action() {
    two_calls(Via::ReqwestTracing).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tower_http_client_span_becomes_the_call() {
    two_calls(Via::TowerHttp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inject_current_inside_an_action_started_by_hand_names_it() {
    two_calls(Via::ActionByHand).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_http_wrapper_calling_inject_current_is_the_call() {
    two_calls(Via::Timed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_calls_at_once_through_the_middleware_are_two_spans() {
    let calls = two_calls(Via::MiddlewareAtOnce).await;
    // The second to start overlapped the first: stored beside it.
    let concurrent = calls
        .iter()
        .filter(|call| attribute(call, "timeline.concurrent") == Some(&Value::Bool(true)))
        .count();
    assert_eq!(concurrent, 1, "{calls:#?}");
}
