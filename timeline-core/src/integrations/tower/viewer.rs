//! The recent-requests viewer: the last finished requests in a ring
//! bounded in entries and bytes, the requests still running, and a page,
//! a JSON report and a Chrome trace of each — the Django debug toolbar's
//! SQL panel for any tower service.

use std::collections::{HashMap, VecDeque};
use std::fmt::{self, Write as _};
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use parking_lot::Mutex;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{FinishedRequest, RequestTimelineLayer, RequestTimelineService};
use crate::render::html::escape;
use crate::text::one_line;
use crate::time::{millis, rfc3339};
use crate::{Report, Timeline};

type Access = dyn Fn(&Parts) -> bool + Send + Sync;

/// How the [viewer](RequestTimelineLayer::viewer) keeps and shows recent
/// requests, and who may see them.
///
/// **Timelines hold SQL text, URLs and whatever else your details carry —
/// often personal data, sometimes secrets.** Access is therefore your
/// explicit decision: [`new`](Self::new) takes a predicate on the request
/// (its method, URI, headers and extensions), and the viewer answers 404 to
/// every request it refuses. Allow only what you would allow to read your
/// database's query log: a loopback peer, an operator's token, a VPN
/// address. Consider a [`detail_filter`](crate::TimelineBuilder::detail_filter)
/// as well.
///
/// ```
/// use timeline_core::integrations::tower::{RequestTimelineLayer, ViewerOptions};
///
/// let token = std::env::var("TIMELINE_VIEWER_TOKEN").unwrap_or_default();
/// let options = ViewerOptions::new(move |request| {
///     !token.is_empty()
///         && request.headers.get("x-viewer-token").is_some_and(|v| v.as_bytes() == token.as_bytes())
/// })
/// .max_requests(200)
/// .max_bytes(32 << 20);
/// let layer = RequestTimelineLayer::new().viewer("/_timeline", options);
/// // axum: Router::new().route(…).layer(layer)
/// # drop(layer);
/// ```
#[derive(Clone)]
pub struct ViewerOptions {
    access: Arc<Access>,
    max_requests: usize,
    max_bytes: usize,
}

impl fmt::Debug for ViewerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ViewerOptions")
            .field("max_requests", &self.max_requests)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl ViewerOptions {
    /// Options whose viewer serves only requests for which `access`
    /// returns `true` (a predicate that panics refuses), keeping the last
    /// 100 finished requests within 16 MiB.
    pub fn new(access: impl Fn(&Parts) -> bool + Send + Sync + 'static) -> ViewerOptions {
        ViewerOptions {
            access: Arc::new(access),
            max_requests: 100,
            max_bytes: 16 << 20,
        }
    }

    /// Keep at most this many finished requests (default 100).
    pub fn max_requests(mut self, max_requests: usize) -> ViewerOptions {
        self.max_requests = max_requests;
        self
    }

    /// Keep finished requests within about this many bytes (default
    /// 16 MiB), counting their reports; the oldest go first. A request
    /// whose report alone is larger is listed without it.
    pub fn max_bytes(mut self, max_bytes: usize) -> ViewerOptions {
        self.max_bytes = max_bytes;
        self
    }
}

/// What the layer's services share with the viewer: the requests running
/// and the ring of finished ones.
pub(super) struct Recent {
    prefix: String,
    options: ViewerOptions,
    next_id: AtomicU64,
    running: Mutex<HashMap<u64, Arc<Running>>>,
    ring: Mutex<Ring>,
}

#[derive(Default)]
struct Ring {
    entries: VecDeque<Arc<Entry>>,
    bytes: usize,
}

/// A request still running.
struct Running {
    id: u64,
    at: SystemTime,
    started: Instant,
    method: Method,
    uri: Uri,
    timeline: Timeline,
}

/// A finished request as the ring keeps it.
struct Entry {
    id: u64,
    at: SystemTime,
    method: String,
    path: String,
    end: String,
    failed: bool,
    actions: u64,
    concurrent: u64,
    duration: Duration,
    /// The most times one statement was repeated (the largest finding,
    /// N+1), or 0.
    repeated: u64,
    oops_id: Option<String>,
    /// `None` when the report alone was larger than the ring's bound.
    report: Option<Report>,
    bytes: usize,
}

impl Recent {
    /// Notes a request that starts, under a new id.
    pub(crate) fn start(&self, method: &Method, uri: &Uri, timeline: &Timeline) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let running = Arc::new(Running {
            id,
            at: SystemTime::now(),
            started: Instant::now(),
            method: method.clone(),
            uri: uri.clone(),
            timeline: timeline.clone(),
        });
        self.running.lock().insert(id, running);
        id
    }

    /// Moves a request from the running ones into the ring, with its
    /// report (made outside every lock).
    pub(crate) fn finish(&self, id: u64, request: &FinishedRequest, report: Report) {
        let removed = self.running.lock().remove(&id);
        drop(removed);
        let summary = report.summary();
        let mut entry = Entry {
            id,
            at: report.baseline(),
            method: request.method().as_str().to_owned(),
            path: report
                .request()
                .map_or_else(String::new, |r| r.path().to_owned()),
            end: match request.status() {
                Some(status) => status.as_u16().to_string(),
                None => match request.end() {
                    super::RequestEnd::Failed(_) => "failed".to_owned(),
                    super::RequestEnd::Panicked => "panicked".to_owned(),
                    _ => "dropped".to_owned(),
                },
            },
            failed: request.oops_reason().is_some(),
            actions: summary.action_count(),
            concurrent: summary.concurrent_count(),
            duration: request.elapsed(),
            repeated: (summary.findings().iter())
                .map(|r| r.count())
                .max()
                .unwrap_or(0),
            oops_id: request.oops_id().map(str::to_owned),
            report: None,
            bytes: 0,
        };
        let bytes = report.approx_bytes();
        entry.bytes = 256 + entry.path.len() + entry.method.len();
        if bytes + entry.bytes <= self.options.max_bytes {
            entry.bytes += bytes;
            entry.report = Some(report);
        } else {
            drop(report);
        }
        let entry = Arc::new(entry);
        // Evicted entries are dropped after the lock is let go: freeing a
        // large report must not hold up another request.
        let mut evicted = Vec::new();
        {
            let mut ring = self.ring.lock();
            ring.bytes += entry.bytes;
            ring.entries.push_back(entry);
            while ring.entries.len() > self.options.max_requests
                || (ring.bytes > self.options.max_bytes && ring.entries.len() > 1)
            {
                let Some(old) = ring.entries.pop_front() else {
                    break;
                };
                ring.bytes -= old.bytes;
                evicted.push(old);
            }
        }
        drop(evicted);
    }

    /// Whether `path` is the viewer's.
    fn serves(&self, path: &str) -> bool {
        path.strip_prefix(&self.prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    fn entries(&self) -> Vec<Arc<Entry>> {
        self.ring.lock().entries.iter().cloned().collect()
    }

    fn entry(&self, id: u64) -> Option<Arc<Entry>> {
        self.ring
            .lock()
            .entries
            .iter()
            .find(|e| e.id == id)
            .cloned()
    }

    fn running(&self) -> Vec<Arc<Running>> {
        let mut running: Vec<_> = self.running.lock().values().cloned().collect();
        running.sort_by_key(|r| r.id);
        running
    }

    fn running_one(&self, id: u64) -> Option<Arc<Running>> {
        self.running.lock().get(&id).cloned()
    }

    /// The viewer's answer to a request for `path` (under the prefix).
    fn respond(&self, path: &str) -> Page {
        let rest = path[self.prefix.len()..].trim_start_matches('/');
        if rest.is_empty() {
            return Page::html(self.index());
        }
        let (id, kind) = match rest.split_once('.') {
            Some((id, "json")) => (id, Kind::Json),
            Some((id, "trace.json")) => (id, Kind::Trace),
            Some(_) => return Page::not_found(),
            None => (rest, Kind::Html),
        };
        let Ok(id) = id.parse::<u64>() else {
            return Page::not_found();
        };
        let (report, banner) = if let Some(entry) = self.entry(id) {
            match &entry.report {
                Some(report) => (report.clone(), None),
                None => {
                    return Page::html(self.message_page(
                        "Too large to keep",
                        "This request's report was larger than the viewer's max_bytes.",
                    ));
                }
            }
        } else if let Some(running) = self.running_one(id) {
            let report = running
                .timeline
                .report()
                .with_request(super::context::running_context(
                    &running.method,
                    &running.uri,
                    &running.timeline,
                ));
            let banner = format!(
                "Still running after {}: unfinished actions end now. Reload for more.",
                millis(running.started.elapsed())
            );
            (report, Some(banner))
        } else {
            return Page::not_found();
        };
        match kind {
            Kind::Html => {
                let back = format!(
                    "<a href=\"{}/\">← recent requests</a>{}",
                    escape(&self.prefix),
                    banner
                        .map(|b| format!(" · <strong id=\"running\">{}</strong>", escape(&b)))
                        .unwrap_or_default()
                );
                Page::html(report.html_page(&back))
            }
            Kind::Json => Page::download(report.to_json(), &format!("{}.json", report.id())),
            Kind::Trace => Page::download(
                report.to_chrome_trace(),
                &format!("{}.trace.json", report.id()),
            ),
        }
    }

    fn message_page(&self, title: &str, message: &str) -> String {
        let mut page = page_head(title);
        let _ = writeln!(
            page,
            "<p><a href=\"{}/\">← recent requests</a></p><p>{}</p></body></html>",
            escape(&self.prefix),
            escape(message)
        );
        page
    }

    fn index(&self) -> String {
        let running = self.running();
        let entries = self.entries();
        let prefix = escape(&self.prefix);
        let mut page = page_head("Recent requests");
        page.push_str("<h1>Recent requests</h1>\n");
        let _ = writeln!(
            page,
            "<p class=\"meta\">The requests still running, and the last {} finished requests \
             kept within {} KiB, newest first. Timelines hold SQL text: share with care.</p>",
            self.options.max_requests,
            self.options.max_bytes / 1024
        );
        let _ = write!(
            page,
            "<h2>Running ({})</h2>\n<table id=\"running\"><thead><tr><th>started</th><th>method</th>\
             <th>path</th><th>elapsed</th><th>actions</th><th>waiting on</th></tr></thead><tbody>\n",
            running.len()
        );
        for request in &running {
            // Each timeline is read on its own, outside the viewer's locks.
            let actions = request.timeline.actions();
            let waiting = actions
                .iter()
                .rev()
                .find(|a| a.duration().is_none() && !a.is_nested())
                .or_else(|| actions.iter().rev().find(|a| a.duration().is_none()));
            let _ = write!(
                page,
                "<tr class=\"running\"><td>{}</td><td>{}</td><td><a href=\"{prefix}/{}\">{}</a></td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"detail\">",
                clock_time(request.at),
                escape(request.method.as_str()),
                request.id,
                escape(&one_line(request.uri.path(), 200)),
                millis(request.started.elapsed()),
                actions.iter().filter(|a| !a.is_nested()).count(),
            );
            match waiting {
                Some(action) => {
                    let _ = write!(
                        page,
                        "<b>{}</b> {} <span class=\"flag bad\">for {}, ends now</span>",
                        escape(&one_line(action.category(), 40)),
                        escape(&one_line(action.detail(), 200)),
                        millis(action.duration_or_elapsed())
                    );
                }
                None => page.push_str("<span class=\"meta\">no action running</span>"),
            }
            page.push_str("</td></tr>\n");
        }
        page.push_str("</tbody></table>\n");
        let _ = write!(
            page,
            "<h2>Finished ({})</h2>\n<table id=\"finished\"><thead><tr><th>time</th><th>method</th>\
             <th>path</th><th>status</th><th>actions</th><th>duration</th><th>flags</th>\
             <th>download</th></tr></thead><tbody>\n",
            entries.len()
        );
        for entry in entries.iter().rev() {
            let _ = write!(
                page,
                "<tr class=\"finished{}\"><td>{}</td><td>{}</td><td><a href=\"{prefix}/{}\">{}</a></td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>",
                if entry.failed { " failed" } else { "" },
                clock_time(entry.at),
                escape(&entry.method),
                entry.id,
                escape(&one_line(&entry.path, 200)),
                escape(&entry.end),
                entry.actions,
                millis(entry.duration),
            );
            if entry.repeated > 0 {
                let _ = write!(
                    page,
                    "<span class=\"flag\" title=\"a statement repeated with other values\">N+1 ×{}</span>",
                    entry.repeated
                );
            }
            if entry.concurrent > 0 {
                let _ = write!(
                    page,
                    "<span class=\"flag\">{} concurrent</span>",
                    entry.concurrent
                );
            }
            if let Some(id) = &entry.oops_id {
                let _ = write!(page, "<span class=\"flag bad\">{}</span>", escape(id));
            }
            page.push_str("</td><td>");
            if entry.report.is_some() {
                let _ = write!(
                    page,
                    "<a href=\"{prefix}/{id}.json\" download>JSON</a> · \
                     <a href=\"{prefix}/{id}.trace.json\" download>trace</a>",
                    id = entry.id
                );
            } else {
                page.push_str("<span class=\"meta\">too large to keep</span>");
            }
            page.push_str("</td></tr>\n");
        }
        page.push_str("</tbody></table>\n</body></html>\n");
        page
    }
}

/// The viewer's pages share the reports' rules: no script, no fetch.
fn page_head(title: &str) -> String {
    let mut page = String::with_capacity(16 * 1024);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    page.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n<title>");
    page.push_str(&escape(title));
    page.push_str(" — timeline</title>\n<style>");
    page.push_str(INDEX_STYLE);
    page.push_str("</style></head>\n<body>\n");
    page
}

const INDEX_STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:0;padding:8px 20px;color:#1d1d1f;background:#fafafa}
h1{font-size:18px;margin:6px 0}h2{font-size:15px;margin:14px 0 6px}
.meta{color:#666;font-size:12px}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f0f0f0;font-size:12px}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.detail{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
tr.failed td{background:#fff0f0}
.flag{font-size:11px;padding:0 4px;border-radius:3px;background:#eee;margin-right:4px;white-space:nowrap}
.flag.bad{background:#fde2e1;color:#b00020}
a{color:#0645ad}
";

/// The time of day of `at`, UTC, to the millisecond.
fn clock_time(at: SystemTime) -> String {
    let full = rfc3339(at);
    full.get(11..23).unwrap_or(&full).to_owned()
}

enum Kind {
    Html,
    Json,
    Trace,
}

/// A response the viewer makes, before it becomes the service's body type.
struct Page {
    status: StatusCode,
    content_type: &'static str,
    download: Option<String>,
    body: String,
}

impl Page {
    fn html(body: String) -> Page {
        Page {
            status: StatusCode::OK,
            content_type: "text/html; charset=utf-8",
            download: None,
            body,
        }
    }

    fn download(body: String, file_name: &str) -> Page {
        Page {
            status: StatusCode::OK,
            content_type: "application/json",
            download: Some(file_name.to_owned()),
            body,
        }
    }

    fn not_found() -> Page {
        Page {
            status: StatusCode::NOT_FOUND,
            content_type: "text/plain; charset=utf-8",
            download: None,
            body: "not found\n".to_owned(),
        }
    }

    fn into_response<B: From<String>>(self) -> Response<B> {
        let mut response = Response::new(B::from(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
            ),
        );
        headers.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        if let Some(name) = self.download {
            // Report ids are `OOPS-` and hex digits: always a valid value.
            if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
                headers.insert(CONTENT_DISPOSITION, value);
            }
        }
        response
    }
}

impl RequestTimelineLayer {
    /// The layer with a recent-requests viewer under `path_prefix` (e.g.
    /// `/_timeline`), for the requests `options` allows (see
    /// [`ViewerOptions`]: **timelines hold SQL text**). Off unless called.
    ///
    /// The viewer serves (an empty prefix or `/` means `/_timeline`)
    ///
    /// - `path_prefix/`: the requests still running — elapsed time and the
    ///   action each is waiting on, which ends "now" — and the last
    ///   finished ones: time, method, path, status, action count,
    ///   duration, flags for repeated statements (N+1) and OOPS reports;
    /// - `path_prefix/{n}`: a request's page ([`Report::to_html`]), live
    ///   for a running request;
    /// - `path_prefix/{n}.json` and `path_prefix/{n}.trace.json`: its
    ///   report and its Chrome trace, for download.
    ///
    /// Its own requests are answered before the timeline layer and never
    /// recorded; a refused one gets a 404. Finished requests are kept in a
    /// ring bounded in entries and bytes; a request adds itself with one
    /// short lock, and readers copy what they show (pointers to the kept
    /// reports) under the same short lock, then render without it.
    ///
    /// Call it last: it turns the layer into a [`ViewerLayer`], which
    /// needs a response body that can be made from a `String` (axum's
    /// `Body`, `Full<Bytes>`, `String`).
    ///
    /// ```
    /// use timeline_core::integrations::tower::{RequestTimelineLayer, ViewerOptions};
    ///
    /// // Only on a development machine: everyone who can reach the port may look.
    /// let layer = RequestTimelineLayer::new()
    ///     .server_timing(true)
    ///     .viewer("/_timeline", ViewerOptions::new(|_request| cfg!(debug_assertions)));
    /// # drop(layer);
    /// ```
    pub fn viewer(self, path_prefix: &str, options: ViewerOptions) -> ViewerLayer {
        let recent = Arc::new(Recent::new(path_prefix, options));
        let layer = self.with(|config| config.viewer = Some(Arc::clone(&recent)));
        ViewerLayer { layer, recent }
    }
}

impl Recent {
    fn new(path_prefix: &str, options: ViewerOptions) -> Recent {
        let trimmed = path_prefix.trim_matches('/');
        // The application's root is the application's: an empty prefix
        // would also make links like `//1`, which browsers read as hosts.
        let prefix = if trimmed.is_empty() {
            "/_timeline".to_owned()
        } else {
            format!("/{trimmed}")
        };
        Recent {
            prefix,
            options,
            next_id: AtomicU64::new(1),
            running: Mutex::new(HashMap::new()),
            ring: Mutex::new(Ring::default()),
        }
    }
}

/// A [`RequestTimelineLayer`] with its recent-requests viewer, from
/// [`RequestTimelineLayer::viewer`].
#[derive(Clone)]
pub struct ViewerLayer {
    layer: RequestTimelineLayer,
    recent: Arc<Recent>,
}

impl fmt::Debug for ViewerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ViewerLayer")
            .field("layer", &self.layer)
            .field("prefix", &self.recent.prefix)
            .field("options", &self.recent.options)
            .finish()
    }
}

impl ViewerLayer {
    /// How many finished requests the viewer keeps now.
    ///
    /// ```
    /// use timeline_core::integrations::tower::{RequestTimelineLayer, ViewerOptions};
    ///
    /// let layer = RequestTimelineLayer::new().viewer("/_timeline", ViewerOptions::new(|_| false));
    /// assert_eq!((layer.kept_requests(), layer.kept_bytes(), layer.running_requests()), (0, 0, 0));
    /// ```
    pub fn kept_requests(&self) -> usize {
        self.recent.ring.lock().entries.len()
    }

    /// About how many bytes the kept requests hold: at most the
    /// [`max_bytes`](ViewerOptions::max_bytes) of the options, unless a
    /// single request's listing exceeds it.
    pub fn kept_bytes(&self) -> usize {
        self.recent.ring.lock().bytes
    }

    /// How many requests are running now.
    pub fn running_requests(&self) -> usize {
        self.recent.running.lock().len()
    }
}

impl<S> Layer<S> for ViewerLayer {
    type Service = ViewerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ViewerService {
            inner: self.layer.layer(inner),
            recent: Arc::clone(&self.recent),
        }
    }
}

/// The service of [`ViewerLayer`]: the viewer's pages, and every other
/// request through [`RequestTimelineService`].
#[derive(Clone)]
pub struct ViewerService<S> {
    inner: RequestTimelineService<S>,
    recent: Arc<Recent>,
}

impl<S: fmt::Debug> fmt::Debug for ViewerService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ViewerService")
            .field("inner", &self.inner)
            .field("prefix", &self.recent.prefix)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ViewerService<S>
where
    RequestTimelineService<S>: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = <RequestTimelineService<S> as Service<Request<ReqBody>>>::Error;
    type Future =
        ViewerFuture<<RequestTimelineService<S> as Service<Request<ReqBody>>>::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if !self.recent.serves(request.uri().path()) {
            return ViewerFuture {
                inner: Some(self.inner.call(request)),
                page: None,
            };
        }
        let (parts, _body) = request.into_parts();
        let access = &self.recent.options.access;
        let allowed = panic::catch_unwind(AssertUnwindSafe(|| access(&parts))).unwrap_or(false);
        let page = if allowed && (parts.method == Method::GET || parts.method == Method::HEAD) {
            // Rendering reads only copies and user-free code; a bug in it
            // must not take the server down.
            panic::catch_unwind(AssertUnwindSafe(|| self.recent.respond(parts.uri.path())))
                .unwrap_or_else(|_| Page::not_found())
        } else {
            Page::not_found()
        };
        ViewerFuture {
            inner: None,
            page: Some(page.into_response()),
        }
    }
}

pin_project! {
    /// The response future of [`ViewerService`].
    pub struct ViewerFuture<F, B> {
        #[pin]
        inner: Option<F>,
        page: Option<Response<B>>,
    }
}

impl<F, B> fmt::Debug for ViewerFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ViewerFuture")
            .field("page", &self.page.is_some())
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ViewerFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(page) = this.page.take() {
            return Poll::Ready(Ok(page));
        }
        match this.inner.as_pin_mut() {
            Some(inner) => inner.poll(cx),
            None => panic!("ViewerFuture polled after it completed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_one_path_segment_or_more_and_serves_only_below_it() {
        let options = || ViewerOptions::new(|_| true);
        for (given, prefix) in [
            ("/_timeline/", "/_timeline"),
            ("_timeline", "/_timeline"),
            ("/", "/_timeline"),
            ("", "/_timeline"),
            ("/ops/timeline", "/ops/timeline"),
        ] {
            assert_eq!(Recent::new(given, options()).prefix, prefix, "{given:?}");
        }
        let recent = Recent::new("/_timeline", options());
        for (path, served) in [
            ("/_timeline", true),
            ("/_timeline/", true),
            ("/_timeline/12.json", true),
            ("/_timelines", false),
            ("/", false),
            ("/app/_timeline", false),
        ] {
            assert_eq!(recent.serves(path), served, "{path}");
        }
    }

    #[test]
    fn unknown_pages_are_not_found() {
        let recent = Recent::new("/_timeline", ViewerOptions::new(|_| true));
        for path in [
            "/_timeline/1",
            "/_timeline/x",
            "/_timeline/1.html",
            "/_timeline/-1.json",
            "/_timeline/99999999999999999999999",
        ] {
            assert_eq!(recent.respond(path).status, StatusCode::NOT_FOUND, "{path}");
        }
        assert_eq!(recent.respond("/_timeline/").status, StatusCode::OK);
    }
}
