//! reqwest-middleware with reqwest-tracing, calling a real axum server on
//! loopback inside a request's timeline: each call is an `HTTP-GET` action
//! with the URL as detail; a status of 500 or more and a failed connection
//! set its outcome to an error, a response below 500 is a success. The same
//! for the crate's own `TraceContextMiddleware`, alone and inside
//! reqwest-tracing's span.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_tracing::{SpanBackendWithUrl, TracingMiddleware};
use timeline_core::integrations::reqwest_middleware::TraceContextMiddleware;
use timeline_core::integrations::tracing::TimelineLayer;
use timeline_core::{Action, Outcome, Timeline, TraceContext, WithTimeline};
use timeline_tests::server::serve;
use tracing::instrument::WithSubscriber;
use tracing_subscriber::prelude::*;

async fn server() -> SocketAddr {
    let app = Router::new()
        .route("/bugs/1", get(|| async { "bug 1" }))
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "no such bug") }),
        )
        .route(
            "/broken",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance") }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/parent",
            get(|headers: axum::http::HeaderMap| async move {
                TraceContext::from_headers(&headers)
                    .and_then(|context| context.parent_span_id())
                    .map_or_else(String::new, |parent| parent.to_string())
            }),
        );
    serve(app).await
}

/// A loopback address nobody listens on.
async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

fn with_url() -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(TracingMiddleware::<SpanBackendWithUrl>::new())
        .build()
}

/// Runs `request` as a request with its own timeline, with the timeline
/// layer as the subscriber, and returns the timeline's actions.
async fn record(request: impl Future<Output = ()>) -> Vec<Action> {
    let subscriber = tracing_subscriber::registry().with(TimelineLayer::new());
    let timeline = Timeline::new();
    request
        .with_timeline(timeline.clone())
        .with_subscriber(subscriber)
        .await;
    timeline.actions()
}

#[tokio::test]
async fn calls_are_http_actions_with_their_url() {
    let address = server().await;
    let client = with_url();
    let actions = record(async {
        let body = client
            .get(format!("http://{address}/bugs/1"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "bug 1");
    })
    .await;
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].category(), "HTTP-GET");
    assert_eq!(actions[0].detail(), format!("http://{address}/bugs/1"));
    assert_eq!(actions[0].outcome(), &Outcome::Ok);
    assert!(actions[0].duration().is_some());
}

#[tokio::test]
async fn the_default_backend_gives_the_server_without_the_path() {
    let address = server().await;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(TracingMiddleware::default())
        .build();
    let actions = record(async {
        client
            .get(format!("http://{address}/bugs/1"))
            .send()
            .await
            .unwrap();
    })
    .await;
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].category(), "HTTP-GET");
    assert_eq!(actions[0].detail(), format!("http://{address}"));
}

#[tokio::test]
async fn a_server_error_status_and_a_refused_connection_set_the_outcome() {
    let address = server().await;
    let closed = closed_port().await;
    let client = with_url();
    let actions = record(async {
        let missing = client
            .get(format!("http://{address}/missing"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let broken = client
            .get(format!("http://{address}/broken"))
            .send()
            .await
            .unwrap();
        assert_eq!(broken.status(), StatusCode::SERVICE_UNAVAILABLE);
        let refused = client.get(format!("http://{closed}/")).send().await;
        assert!(refused.is_err());
    })
    .await;
    assert_eq!(actions.len(), 3);
    // A 404 is the server's answer, which reqwest-tracing reports: ok.
    assert_eq!(actions[0].outcome(), &Outcome::Ok);
    assert_eq!(actions[1].outcome(), &Outcome::Error("HTTP 503".to_owned()));
    assert_eq!(actions[2].detail(), format!("http://{closed}/"));
    match actions[2].outcome() {
        Outcome::Error(message) => assert!(message.contains("error sending request"), "{message}"),
        other => panic!("a refused connection recorded as {other:?}"),
    }
}

fn with_trace_context_middleware() -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(TraceContextMiddleware)
        .build()
}

/// A traced timeline, and what `request` recorded on it.
async fn traced(request: impl Future<Output = ()>) -> (Timeline, Vec<Action>) {
    let timeline = Timeline::new();
    timeline.set_trace_context(TraceContext::new_trace(true));
    request.with_timeline(timeline.clone()).await;
    let actions = timeline.actions();
    (timeline, actions)
}

#[tokio::test]
async fn the_middleware_records_each_call_and_names_it_as_the_parent() {
    let address = server().await;
    let client = with_trace_context_middleware();
    let closed = closed_port().await;
    let mut parents = Vec::new();
    let (timeline, actions) = traced(async {
        for _ in 0..2 {
            let parent = client
                .get(format!("http://{address}/parent"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            parents.push(parent);
        }
        let missing = client
            .get(format!("http://{address}/missing"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let broken = client
            .get(format!("http://{address}/broken"))
            .send()
            .await
            .unwrap();
        assert_eq!(broken.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            client
                .get(format!("http://{closed}/"))
                .send()
                .await
                .is_err()
        );
        // Credentials stay out of the detail.
        client
            .post(format!("http://bob:hunter2@{address}/bugs/1"))
            .send()
            .await
            .unwrap();
    })
    .await;
    let shown: Vec<(&str, String)> = actions
        .iter()
        .map(|a| (a.category(), a.detail().to_owned()))
        .collect();
    assert_eq!(
        shown,
        [
            ("HTTP-GET", format!("http://{address}/parent")),
            ("HTTP-GET", format!("http://{address}/parent")),
            ("HTTP-GET", format!("http://{address}/missing")),
            ("HTTP-GET", format!("http://{address}/broken")),
            ("HTTP-GET", format!("http://{closed}/")),
            ("HTTP-POST", format!("http://{address}/bugs/1")),
        ]
    );
    assert_eq!(actions[0].outcome(), &Outcome::Ok);
    // A status below 500 is the server's answer, as with reqwest-tracing.
    assert_eq!(actions[2].outcome(), &Outcome::Ok);
    assert_eq!(actions[3].outcome(), &Outcome::Error("HTTP 503".into()));
    match actions[4].outcome() {
        Outcome::Error(message) => assert!(message.contains("error sending request"), "{message}"),
        other => panic!("a refused connection recorded as {other:?}"),
    }
    // HTTP 405 (the route has no POST): an answer too.
    assert_eq!(actions[5].outcome(), &Outcome::Ok);
    assert!(actions.iter().all(|a| !a.is_concurrent()));
    // Each call named its own action, which readers learn.
    let snapshot = timeline.snapshot();
    assert_ne!(parents[0], parents[1]);
    for (n, parent) in parents.iter().enumerate() {
        assert_eq!(snapshot.call_span_id(n).unwrap().to_string(), *parent);
    }
    let request = timeline.trace_context().unwrap().span_id().to_string();
    assert!(!parents.contains(&request));
}

#[tokio::test]
async fn a_call_dropped_before_its_response_is_cancelled() {
    let address = server().await;
    let client = with_trace_context_middleware();
    let (_, actions) = traced(async {
        let call = client.get(format!("http://{address}/slow")).send();
        assert!(
            tokio::time::timeout(Duration::from_millis(50), call)
                .await
                .is_err()
        );
    })
    .await;
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].outcome(), &Outcome::Cancelled);
    assert!(actions[0].duration().is_some());
}

#[tokio::test]
async fn inside_reqwest_tracing_the_call_is_recorded_once() {
    let address = server().await;
    // reqwest-tracing first: the crate's middleware runs inside its span.
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(TracingMiddleware::<SpanBackendWithUrl>::new())
        .with(TraceContextMiddleware)
        .build();
    let subscriber = tracing_subscriber::registry().with(TimelineLayer::new());
    let timeline = Timeline::new();
    timeline.set_trace_context(TraceContext::new_trace(true));
    let parent = async {
        client
            .get(format!("http://{address}/parent"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
    .with_timeline(timeline.clone())
    .with_subscriber(subscriber)
    .await;
    let actions = timeline.actions();
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0].detail(), format!("http://{address}/parent"));
    assert_eq!(
        timeline.snapshot().call_span_id(0).unwrap().to_string(),
        parent
    );
    assert!(timeline.violations().is_empty());
}

#[tokio::test]
async fn without_a_trace_context_the_middleware_still_records_the_call() {
    let address = server().await;
    let client = with_trace_context_middleware();
    let timeline = Timeline::new();
    let parent = async {
        client
            .get(format!("http://{address}/parent"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
    .with_timeline(timeline.clone())
    .await;
    assert_eq!(parent, "", "no traceparent sent");
    assert_eq!(timeline.len(), 1);
}
