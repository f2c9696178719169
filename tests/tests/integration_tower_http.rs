//! tower-http's `TraceLayer` on both sides of a real loopback call: around
//! the server's handler (not an external action) and around the
//! `hyper_util` client the handler calls another service with (an
//! `HTTP-GET` action with its URI).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::routing::get;
use http_body_util::BodyExt;
use timeline_core::integrations::tower::RequestTimelineLayer;
use timeline_core::integrations::tracing::TimelineLayer;
use timeline_core::{Action, Timeline};
use timeline_tests::server::{client, eventually, serve};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::trace::TraceLayer;
use tracing_subscriber::prelude::*;

/// Asks `backend` for `/user/1` through a traced client.
async fn page(State(backend): State<SocketAddr>) -> String {
    let client = ServiceBuilder::new()
        .layer(TraceLayer::new_for_http())
        .service(client());
    let request = Request::get(format!("http://{backend}/user/1"))
        .body(Body::empty())
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traced_client_call_is_an_action_and_the_traced_server_is_not() {
    let backend = serve(Router::new().route("/user/1", get(|| async { "user 1" }))).await;
    let seen: Arc<Mutex<Vec<Timeline>>> = Arc::default();
    let hook = Arc::clone(&seen);
    let app = Router::new()
        .route("/page", get(page))
        .with_state(backend)
        // The server's own trace span, inside the request's timeline.
        .layer(TraceLayer::new_for_http())
        .layer(
            RequestTimelineLayer::new()
                .on_request(move |request| hook.lock().unwrap().push(request.timeline().clone())),
        );
    // Global: axum serves each connection on a task of its own. The only
    // test of this binary.
    tracing_subscriber::registry()
        .with(TimelineLayer::new())
        .init();
    let address = serve(app).await;
    let response = client()
        .request(
            Request::get(format!("http://{address}/page"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"user 1");
    // The hook runs as the response is sent.
    eventually(|| (!seen.lock().unwrap().is_empty()).then_some(())).await;
    let timelines = seen.lock().unwrap().clone();
    assert_eq!(timelines.len(), 1);
    let actions: Vec<(String, String)> = timelines[0]
        .actions()
        .iter()
        .map(|a: &Action| (a.category().to_owned(), a.detail().to_owned()))
        .collect();
    assert_eq!(
        actions,
        [("HTTP-GET".to_owned(), format!("http://{backend}/user/1"))]
    );
}
