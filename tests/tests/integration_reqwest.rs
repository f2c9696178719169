//! reqwest-middleware with reqwest-tracing, calling a real axum server on
//! loopback inside a request's timeline: each call is an `HTTP-GET` action
//! with the URL as detail; a status of 500 or more and a failed connection
//! set its outcome to an error, a response below 500 is a success.

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
        )
        .route(
            "/broken",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance") }),
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
