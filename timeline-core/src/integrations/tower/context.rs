//! What the layer tells about a request outside its timeline: the request
//! context of its report, the log line, and the figures it leaves in the
//! response's extensions for access-log layers outside.

use std::any::Any;
use std::time::Duration;

use http::{Method, Uri};

use super::{FinishedRequest, OopsReason, RequestEnd};
use crate::text::one_line;
use crate::{ReportReason, RequestContext, Timeline};

/// The longest path a report keeps, in chars.
const PATH_CHARS: usize = 2_000;

/// The request's action count and duration, left in the response's
/// [extensions](http::Response::extensions) by
/// [`RequestTimelineLayer`](super::RequestTimelineLayer), so that an
/// access-log layer outside it (tower-http's `TraceLayer`, a custom one)
/// can print them — as Launchpad's access log did.
///
/// ```
/// use std::time::Duration;
/// use timeline_core::integrations::tower::TimelineStats;
///
/// fn access_log(response: &http::Response<String>) {
///     if let Some(stats) = response.extensions().get::<TimelineStats>() {
///         eprintln!("{} actions, {:?}", stats.action_count(), stats.duration());
///     }
/// }
/// # access_log(&http::Response::new(String::new()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineStats {
    pub(crate) action_count: u64,
    pub(crate) duration: Duration,
    pub(super) oops_id: Option<String>,
}

impl TimelineStats {
    /// How many actions the request issued, dropped ones included (nesting
    /// actions not counted), as in the summary line.
    pub fn action_count(&self) -> u64 {
        self.action_count
    }

    /// How long the request's timeline ran until the response was ready.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The id of the OOPS report made of the request, if one was.
    pub fn oops_id(&self) -> Option<&str> {
        self.oops_id.as_deref()
    }
}

/// The summary line's count, without building a summary: stored
/// non-nesting actions plus the dropped ones.
pub(super) fn action_count(timeline: &Timeline) -> u64 {
    timeline.action_count()
}

/// The request's path as a report keeps it: the query string only as the
/// timeline's detail filter lets it through, and none without a filter.
pub(super) fn report_path(uri: &Uri, timeline: &Timeline) -> String {
    let mut path = one_line(uri.path(), PATH_CHARS);
    if let Some(filtered) = uri
        .query()
        .and_then(|query| timeline.filter_detail(query.to_owned()))
    {
        if !filtered.is_empty() {
            path.push('?');
            path.push_str(&one_line(&filtered, PATH_CHARS));
        }
    }
    path
}

/// The message of a panic's payload, when it is a string.
pub(super) fn panic_message(payload: &(dyn Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
}

/// The context of a request still running.
pub(super) fn running_context(method: &Method, uri: &Uri, timeline: &Timeline) -> RequestContext {
    RequestContext::new(method.as_str(), report_path(uri, timeline))
}

impl FinishedRequest {
    /// The request as its report carries it: method, path (the query
    /// string only through the timeline's detail filter), status, why a
    /// report was made and the error.
    pub fn report_context(&self) -> RequestContext {
        let mut context = running_context(&self.method, &self.uri, &self.timeline);
        if let Some(status) = self.status() {
            context = context.with_status(status.as_u16());
        }
        let reason = match self.oops_reason() {
            Some(OopsReason::ServerError(_)) => Some(ReportReason::ServerError),
            Some(OopsReason::Failed(_)) => Some(ReportReason::Failed),
            Some(OopsReason::Panicked) => Some(ReportReason::Panicked),
            Some(OopsReason::SoftTimeout { .. }) => Some(ReportReason::SoftTimeout),
            None if self.end == RequestEnd::Dropped => Some(ReportReason::Dropped),
            None => None,
        };
        if let Some(reason) = reason {
            context = context.with_reason(reason);
        }
        match (&self.end, &self.panic_message) {
            (RequestEnd::Failed(error), _) => context.with_error(error.clone()),
            (RequestEnd::Panicked, Some(message)) => context.with_error(message.clone()),
            _ => context,
        }
    }

    /// The id of the OOPS report made of this request, if one was: for
    /// [`on_oops`](super::RequestTimelineLayer::on_oops) or the
    /// [viewer](super::RequestTimelineLayer::viewer).
    pub fn oops_id(&self) -> Option<&str> {
        self.oops_id.as_deref()
    }

    /// The per-request log line: method, path (without its query string),
    /// status or how the request ended, the summary line, and — as in
    /// Launchpad — the OOPS id when the request produced a report:
    /// `GET /bugs/1 500: 3 queries/external actions issued in 0.42 seconds OOPS-…`.
    /// Control characters from the request are replaced, so the line stays
    /// one line.
    ///
    /// ```
    /// use timeline_core::integrations::tower::RequestTimelineLayer;
    ///
    /// let layer = RequestTimelineLayer::new().on_request(|request| eprintln!("{}", request.log_line()));
    /// # drop(layer);
    /// ```
    pub fn log_line(&self) -> String {
        let end = match &self.end {
            RequestEnd::Responded(status) => status.as_u16().to_string(),
            RequestEnd::Failed(_) => "failed".to_owned(),
            RequestEnd::Panicked => "panicked".to_owned(),
            RequestEnd::Dropped => "dropped".to_owned(),
        };
        let mut line = format!(
            "{} {} {end}: {}",
            self.method,
            one_line(self.uri.path(), 200),
            self.timeline.summary()
        );
        if let Some(id) = &self.oops_id {
            line.push(' ');
            line.push_str(id);
        }
        line
    }
}
