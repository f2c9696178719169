//! The request a report belongs to: method, path, status, why the report
//! was made and the error, as the tower layer (or any framework) knows them.

use std::fmt;

/// Why a report was made of a request.
///
/// ```
/// use timeline_core::ReportReason;
///
/// assert_eq!(ReportReason::SoftTimeout.as_str(), "soft_timeout");
/// assert_eq!(ReportReason::ServerError.to_string(), "5xx response");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReportReason {
    /// The response had a 5xx status.
    ServerError,
    /// The service failed without a response.
    Failed,
    /// The handler panicked.
    Panicked,
    /// The request ran past its soft time limit.
    SoftTimeout,
    /// The request was dropped before it ended (the client went away).
    Dropped,
}

impl ReportReason {
    /// The reason as a stable machine-readable word, as the JSON report
    /// has it: `server_error`, `failed`, `panicked`, `soft_timeout` or
    /// `dropped`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReportReason::ServerError => "server_error",
            ReportReason::Failed => "failed",
            ReportReason::Panicked => "panicked",
            ReportReason::SoftTimeout => "soft_timeout",
            ReportReason::Dropped => "dropped",
        }
    }
}

impl fmt::Display for ReportReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReportReason::ServerError => "5xx response",
            ReportReason::Failed => "service error",
            ReportReason::Panicked => "panic",
            ReportReason::SoftTimeout => "soft time limit",
            ReportReason::Dropped => "dropped",
        })
    }
}

/// The HTTP request a [`Report`](crate::Report) belongs to. The tower
/// layer fills it in; other frameworks can attach one with
/// [`Report::with_request`](crate::Report::with_request).
///
/// The path holds a query string only as the timeline's detail filter let
/// it through: query strings carry tokens as often as statements carry
/// passwords.
///
/// ```
/// use timeline_core::{ReportReason, RequestContext, Timeline};
///
/// let context = RequestContext::new("GET", "/bugs/1")
///     .with_status(500)
///     .with_reason(ReportReason::ServerError)
///     .with_error("database is locked");
/// let report = Timeline::new().report().with_request(context);
/// let request = report.request().unwrap();
/// assert_eq!((request.method(), request.path(), request.status()), ("GET", "/bugs/1", Some(500)));
/// assert!(report.to_json().contains(r#""reason":"server_error""#));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) status: Option<u16>,
    pub(crate) reason: Option<ReportReason>,
    pub(crate) error: Option<String>,
}

impl RequestContext {
    /// A request with this method and path (and query string, if wanted),
    /// no status, reason or error yet.
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> RequestContext {
        RequestContext {
            method: method.into(),
            path: path.into(),
            ..RequestContext::default()
        }
    }

    /// The response status, if there was a response.
    pub fn with_status(mut self, status: u16) -> RequestContext {
        self.status = Some(status);
        self
    }

    /// Why the report was made.
    pub fn with_reason(mut self, reason: ReportReason) -> RequestContext {
        self.reason = Some(reason);
        self
    }

    /// The error the request ended with: a service error, a panic's message.
    pub fn with_error(mut self, error: impl Into<String>) -> RequestContext {
        self.error = Some(error.into());
        self
    }

    /// The request's method, e.g. `GET`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request's path, with the query string only as the detail filter
    /// let it through.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The response status, if the service answered.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Why the report was made, if it was made for a reason (a viewer keeps
    /// reports of ordinary requests too).
    pub fn reason(&self) -> Option<ReportReason> {
        self.reason
    }

    /// The error the request ended with, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The heap bytes the context holds, for byte-bounded stores.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.method.capacity()
            + self.path.capacity()
            + self.error.as_ref().map_or(0, String::capacity)
    }
}
