//! reqwest-middleware with reqwest-tracing, calling a real axum server on
//! loopback inside a request's timeline: each call is an `HTTP-GET` action
//! with the URL as detail, and failures set its outcome.

use std::net::SocketAddr;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_tracing::{SpanBackendWithUrl, TracingMiddleware};
use timeline_core::integrations::tracing::TimelineLayer;
use timeline_core::{Action, Outcome, Timeline, WithTimeline};
use timeline_tests::server::serve;
use tracing::instrument::WithSubscriber;
use tracing_subscriber::prelude::*;

async fn server() -> SocketAddr {
    let app = Router::new()
        .route("/bugs/1", get(|| async { "bug 1" }))
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "no such bug") }),
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
async fn an_error_status_and_a_refused_connection_set_the_outcome() {
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
        let refused = client.get(format!("http://{closed}/")).send().await;
        assert!(refused.is_err());
    })
    .await;
    assert_eq!(actions.len(), 2);
    assert_eq!(actions[0].outcome(), &Outcome::Error("HTTP 404".to_owned()));
    assert_eq!(actions[1].detail(), format!("http://{closed}/"));
    match actions[1].outcome() {
        Outcome::Error(message) => assert!(message.contains("error sending request"), "{message}"),
        other => panic!("a refused connection recorded as {other:?}"),
    }
}
