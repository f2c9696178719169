//! A real axum server on a loopback port with the timeline layer and its
//! viewer: the bug tracker's routes, a request that hangs on a statement,
//! a panicking one and one whose details and path are hostile. The viewer
//! tests and the browser tests both ask it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::get;
use http_body_util::BodyExt;
use timeline_core::integrations::tower::{RequestTimelineLayer, ViewerLayer, ViewerOptions};
use timeline_core::{Outcome, current};
use timeline_examples::web;

use crate::bugs::database;
use crate::server::{HttpClient, client, eventually};

/// The statement the hanging request waits on.
pub const HANG_DETAIL: &str = "SELECT * FROM bug FOR UPDATE -- waits for the lock";

/// Hostile details, one action each.
pub const HOSTILE: [&str; 4] = [
    "<script>document.title = 'PWNED'</script>",
    "\"><img src=x onerror=\"document.title='PWNED'\">",
    "SELECT 1 -- \u{202E}gnp.exe",
    "</td></tr></table><h1 id=\"injected\">injected</h1>",
];

async fn hangs() -> &'static str {
    let timeline = current().expect("the request's timeline");
    timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    let _waiting = timeline.start("SQL-main", HANG_DETAIL).unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    "never\n"
}

async fn hostile() -> &'static str {
    let timeline = current().expect("the request's timeline");
    for detail in HOSTILE {
        timeline
            .start("SQL-main", detail)
            .unwrap()
            .finish_with(Outcome::Error(format!("<b>failed</b> {detail}")));
    }
    timeline
        .start("SQL-main", "x".repeat(64 * 1024))
        .unwrap()
        .finish();
    "hostile\n"
}

async fn panics() -> &'static str {
    let timeline = current().expect("the request's timeline");
    timeline
        .start("SQL-main", "SELECT 1 -- before the panic")
        .unwrap()
        .finish();
    panic!("handler bug <script>");
}

/// Loopback peers only: what the browser tests use.
///
/// See [`serve`] for an example.
pub fn loopback_only() -> ViewerOptions {
    ViewerOptions::new(|request| {
        request
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|peer| peer.0.ip().is_loopback())
    })
}

/// The app served by [`serve`]; dropping it removes its database.
pub struct Server {
    /// Where it listens, on loopback.
    pub address: SocketAddr,
    /// Its bug tracker's database.
    pub database: PathBuf,
    /// The log line of each finished request, in the order they finished.
    pub lines: Arc<Mutex<Vec<String>>>,
    /// Its viewer, to read the ring from outside.
    pub viewer: ViewerLayer,
    client: HttpClient,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.database);
    }
}

/// Serves the app with a viewer under `/_timeline` configured by `options`,
/// on a bug tracker database of its own named after the test, `name`.
///
/// # Panics
///
/// Outside a tokio runtime, or when the database or the listener cannot
/// be made.
///
/// ```
/// use axum::http::StatusCode;
/// use timeline_tests::viewer_app::{loopback_only, serve};
///
/// # #[tokio::main]
/// # async fn main() {
/// let server = serve("doc", loopback_only()).await;
/// let (status, _, body) = server.ask("/products/1", &[]).await;
/// assert_eq!(status, StatusCode::OK, "{body}");
/// server.kept(1).await;
/// assert!(!server.responds("/panics").await);
///
/// let hanging = server.start_hanging();
/// server.running(1).await;
/// let (_, _, index) = server.ask("/_timeline/", &[]).await;
/// assert!(index.contains("<h2>Running (1)</h2>"), "{index}");
/// hanging.abort();
/// # }
/// ```
pub async fn serve(name: &str, options: ViewerOptions) -> Server {
    let database = database("viewer", name);
    let spool = std::env::temp_dir().join(format!("timeline-viewer-spool-{}", std::process::id()));
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&lines);
    let viewer = RequestTimelineLayer::new()
        .soft_time_limit(Duration::from_secs(60))
        .on_request(move |request| seen.lock().unwrap().push(request.log_line()))
        .viewer("/_timeline/", options);
    let app = web::router(database.clone(), spool)
        .merge(
            Router::new()
                .route("/hangs", get(hangs))
                .route("/hostile/{name}", get(hostile))
                .route("/panics", get(panics)),
        )
        .layer(viewer.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    Server {
        address,
        database,
        lines,
        viewer,
        client: client(),
    }
}

impl Server {
    /// One request; the status, the headers and the body.
    pub async fn ask(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let mut request = Request::builder().uri(format!("http://{}{path}", self.address));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .client
            .request(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    /// Whether a request to `path` got any response (a panicking handler
    /// drops the connection).
    pub async fn responds(&self, path: &str) -> bool {
        let uri = format!("http://{}{path}", self.address);
        self.client
            .request(Request::builder().uri(uri).body(Body::empty()).unwrap())
            .await
            .is_ok()
    }

    /// Starts `/hangs` in the background; abort the task to drop it.
    pub fn start_hanging(&self) -> tokio::task::JoinHandle<()> {
        let client = self.client.clone();
        let uri = format!("http://{}/hangs", self.address);
        tokio::spawn(async move {
            let _ = client
                .request(Request::builder().uri(uri).body(Body::empty()).unwrap())
                .await;
        })
    }

    /// Waits until the viewer keeps `n` finished requests.
    ///
    /// # Panics
    ///
    /// When it still keeps fewer after about five seconds.
    pub async fn kept(&self, n: usize) {
        eventually(|| (self.viewer.kept_requests() >= n).then_some(()))
            .await
            .unwrap_or_else(|| panic!("the viewer kept fewer than {n} requests"));
    }

    /// Waits until `n` requests are running.
    ///
    /// # Panics
    ///
    /// When fewer still run after about five seconds.
    pub async fn running(&self, n: usize) {
        eventually(|| (self.viewer.running_requests() >= n).then_some(()))
            .await
            .unwrap_or_else(|| panic!("fewer than {n} requests running"));
    }
}
