//! The service W3C's trace-context test harness drives, built only on the
//! public API: axum with the request layer reading and starting traces
//! (`RequestTimelineLayer::new().trace_context(true)`), and reqwest with
//! [`TraceContextMiddleware`] carrying them on to the calls it makes: each
//! call an action, and an operation with a span id of its own, which its
//! `traceparent` names as the parent.
//!
//! The harness (vendored in `tests/w3c-trace-context/`) POSTs a JSON list
//! of `{"url": …, "arguments": …}` to `/test`, with the `traceparent` and
//! `tracestate` headers of the case; for each item in order, the service
//! POSTs `arguments` as JSON to `url`, and the harness checks the trace
//! context headers of that call. `tests/tests/w3c_harness.rs` runs it;
//! `cargo run --example w3c_service` serves it for a run by hand.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::routing::post;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use serde_json::Value;
use timeline_core::integrations::reqwest_middleware::TraceContextMiddleware;
use timeline_core::integrations::tower::RequestTimelineLayer;

/// The route the harness calls.
pub const PATH: &str = "/test";

/// `POST /test`: the harness's service, with its own HTTP client.
///
/// ```no_run
/// # async fn serve() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
/// axum::serve(listener, timeline_examples::w3c::router()).await
/// # }
/// ```
pub fn router() -> Router {
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(TraceContextMiddleware)
        .build();
    Router::new()
        .route(PATH, post(calls))
        .with_state(client)
        .layer(RequestTimelineLayer::new().trace_context(true))
}

/// Makes the calls the body lists, one after the other, and answers with
/// their statuses (`null` for a call that got no response).
async fn calls(
    State(client): State<ClientWithMiddleware>,
    body: axum::body::Bytes,
) -> Result<axum::Json<Value>, (StatusCode, String)> {
    let bad_request = |why: String| (StatusCode::BAD_REQUEST, why);
    let calls: Value = serde_json::from_slice(&body).map_err(|e| bad_request(e.to_string()))?;
    let Value::Array(calls) = calls else {
        return Err(bad_request("expected a JSON list of calls".into()));
    };
    let mut statuses = Vec::with_capacity(calls.len());
    for call in &calls {
        let url = call["url"]
            .as_str()
            .ok_or_else(|| bad_request(format!("a call without a url: {call}")))?;
        let arguments = call.get("arguments").cloned().unwrap_or(Value::Null);
        let sent = client
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(arguments.to_string())
            .send()
            .await;
        statuses.push(sent.map_or(Value::Null, |response| response.status().as_u16().into()));
    }
    Ok(axum::Json(Value::Array(statuses)))
}
