//! A [`reqwest_middleware::Middleware`] that carries the current request's
//! W3C trace context on to the services it calls (feature
//! `reqwest-middleware`).
//!
//! Every request sent through a client built with [`TraceContextMiddleware`]
//! gets `traceparent` (and `tracestate`) headers from the
//! [current](crate::current) timeline's [`TraceContext`], as
//! [`TraceContext::inject_current`] sets them; with no current timeline, or
//! one without a trace context, the request goes out unchanged. Pair it with
//! reqwest-tracing and the `tracing` feature's preset to also record each
//! call as an action.
//!
//! ```
//! use reqwest_middleware::ClientBuilder;
//! use timeline_core::integrations::reqwest_middleware::TraceContextMiddleware;
//!
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(TraceContextMiddleware)
//!     .build();
//! // In a handler under `RequestTimelineLayer::new().trace_context(true)`:
//! // client.get("http://bugs.internal/products/1").send().await?
//! # drop(client);
//! ```

use http::Extensions;
use reqwest_middleware::{Middleware, Next, Result};

use crate::TraceContext;

/// Injects the current request's trace context into every outgoing
/// request; see the [module documentation](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceContextMiddleware;

#[async_trait::async_trait]
impl Middleware for TraceContextMiddleware {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<reqwest::Response> {
        TraceContext::inject_current(request.headers_mut());
        next.run(request, extensions).await
    }
}
