//! An axum app served on a loopback port, a real HTTP client to ask it,
//! and a wait for what the app's hooks report after the response.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The HTTP/1 client the tests ask their servers with.
pub type HttpClient = Client<HttpConnector, Body>;

/// Serves `app` on a free loopback port from a task of the current tokio
/// runtime, and returns its address.
///
/// # Panics
///
/// Outside a tokio runtime, or when no loopback port is free.
///
/// ```
/// use axum::Router;
/// use axum::body::Body;
/// use axum::http::{Request, StatusCode};
/// use axum::routing::get;
/// use timeline_tests::server::{client, serve, status_timing_body};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let address = serve(Router::new().route("/", get(|| async { "hello" }))).await;
/// let request = Request::get(format!("http://{address}/")).body(Body::empty()).unwrap();
/// let response = client().request(request).await.unwrap();
/// let (status, timing, body) = status_timing_body(response).await;
/// assert_eq!((status, timing, body.as_str()), (StatusCode::OK, None, "hello"));
/// # }
/// ```
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

/// A new [`HttpClient`] running its connections on the current tokio
/// runtime.
///
/// ```
/// use timeline_tests::server::{HttpClient, client};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client: HttpClient = client();
/// # drop(client);
/// # }
/// ```
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// The status of `response`, its `Server-Timing` header and its body,
/// once the whole body arrived.
///
/// # Panics
///
/// When the body fails to arrive, or the header or the body is not UTF-8.
///
/// See [`serve`] for an example.
pub async fn status_timing_body(
    response: Response<Incoming>,
) -> (StatusCode, Option<String>, String) {
    let status = response.status();
    let timing = response
        .headers()
        .get("server-timing")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, timing, String::from_utf8(body.to_vec()).unwrap())
}

/// Asks `ready` every 10 ms, 500 times at most, until it returns
/// `Some`: for what a server's hooks report, since they run as the
/// response is sent, after the client may have got it. `None` when it
/// never did.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use timeline_tests::server::eventually;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let done = Arc::new(AtomicBool::new(false));
/// let flag = Arc::clone(&done);
/// tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
/// assert_eq!(eventually(|| done.load(Ordering::SeqCst).then_some(7)).await, Some(7));
/// # }
/// ```
pub async fn eventually<T>(mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..500 {
        if let Some(value) = ready() {
            return Some(value);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}
