//! A [`reqwest_middleware::Middleware`] that makes each call the current
//! request makes an action of its own and carries the request's W3C trace
//! context on to the service called (feature `reqwest-middleware`).
//!
//! For every request sent through a client built with
//! [`TraceContextMiddleware`], inside a request with a
//! [current](crate::current) timeline:
//!
//! - **The call is an action**, `HTTP-<METHOD>` with the URL as detail
//!   (credentials removed), from sending the request to the response's
//!   head; a status of 500 or more is an [`Outcome::Error`] `HTTP <status>`,
//!   a failure to send one with its message, a call dropped before the
//!   response a [`Cancelled`](Outcome::Cancelled) one. A status below 500
//!   is an answer the server gave (a 404 from an API is not a failure of
//!   the call): `ok`, as the reqwest-tracing preset says too. Calls made together
//!   (`join!`) are [concurrent](crate::Action::is_concurrent) actions.
//! - **The call is an operation of its own in the trace**, as W3C's
//!   processing model asks: its action gets a span id (one random number),
//!   `traceparent` names it as the parent (and `tracestate` is passed on),
//!   and the `opentelemetry` export gives the action's span that id, so in
//!   a trace viewer the service called hangs under this call.
//!
//! A call made while an action is already open — the span reqwest-tracing
//! opens around it (recorded by the `tracing` feature's
//! [`TimelineLayer`](crate::integrations::tracing::TimelineLayer)), a
//! `#[timed]` wrapper, an `HTTP-GET` you started yourself — is part of that
//! action and not recorded twice: that action becomes the call, as with
//! [`TraceContext::inject_current`](crate::TraceContext::inject_current).
//! With reqwest-tracing, add this middleware *after* its
//! `TracingMiddleware`, so that it runs inside the span. Without a current
//! timeline the request goes out unchanged; with one that has no trace
//! context, the call is recorded and no header set.
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

use std::borrow::Cow;

use http::Extensions;
use reqwest::{Method, Url};
use reqwest_middleware::{Middleware, Next, Result};

use crate::record::CallCover;
use crate::{ActionGuard, Outcome};

/// Records each outgoing request as an action and injects its trace
/// context; see the [module documentation](self).
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
        let Some(timeline) = crate::current() else {
            return next.run(request, extensions).await;
        };
        let mut call = CallAction(None);
        let context = match timeline.call_cover() {
            CallCover::Covered(context) => context,
            CallCover::Bare => {
                let category = category(request.method());
                let detail = detail(request.url());
                let (guard, context) = timeline.start_call(category, detail);
                call.0 = Some(guard);
                context
            }
        };
        if let Some(context) = context {
            context.inject(request.headers_mut());
        }
        let result = next.run(request, extensions).await;
        if let Some(guard) = call.0.take() {
            guard.finish_with(match &result {
                Ok(response) if response.status().is_server_error() => {
                    Outcome::Error(format!("HTTP {}", response.status().as_u16()))
                }
                Ok(_) => Outcome::Ok,
                Err(error) => Outcome::Error(error.to_string()),
            });
        }
        result
    }
}

/// The action of a call the middleware recorded: dropped with the
/// middleware's future before the response came, it was cancelled.
struct CallAction(Option<ActionGuard>);

impl Drop for CallAction {
    fn drop(&mut self) {
        if let Some(guard) = self.0.take() {
            let outcome = guard.outcome_on_drop(Outcome::Cancelled);
            guard.finish_with(outcome);
        }
    }
}

/// `HTTP-<METHOD>`, as the `tracing` presets name calls; no allocation for
/// the methods HTTP defines.
fn category(method: &Method) -> Cow<'static, str> {
    const KNOWN: &[(Method, &str)] = &[
        (Method::GET, "HTTP-GET"),
        (Method::POST, "HTTP-POST"),
        (Method::PUT, "HTTP-PUT"),
        (Method::DELETE, "HTTP-DELETE"),
        (Method::PATCH, "HTTP-PATCH"),
        (Method::HEAD, "HTTP-HEAD"),
        (Method::OPTIONS, "HTTP-OPTIONS"),
        (Method::CONNECT, "HTTP-CONNECT"),
        (Method::TRACE, "HTTP-TRACE"),
    ];
    match KNOWN.iter().find(|(known, _)| known == method) {
        Some(&(_, category)) => Cow::Borrowed(category),
        None => Cow::Owned(format!("HTTP-{method}")),
    }
}

/// The URL as the detail: without its credentials, which a report must
/// not show (the timeline's detail filter still runs on what is left).
fn detail(url: &Url) -> Cow<'static, str> {
    if url.username().is_empty() && url.password().is_none() {
        return Cow::Owned(url.as_str().to_owned());
    }
    let mut url = url.clone();
    // Fails only for URLs that cannot have credentials, which these have.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Cow::Owned(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_named_by_method_and_url_without_credentials() {
        assert_eq!(category(&Method::GET), "HTTP-GET");
        assert!(matches!(
            category(&Method::POST),
            Cow::Borrowed("HTTP-POST")
        ));
        let purge = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(category(&purge), "HTTP-PURGE");
        let url = Url::parse("https://bob:hunter2@api.example.com/v1/bugs?id=1").unwrap();
        assert_eq!(detail(&url), "https://api.example.com/v1/bugs?id=1");
        let url = Url::parse("http://127.0.0.1:8080/x").unwrap();
        assert_eq!(detail(&url), "http://127.0.0.1:8080/x");
    }
}
