//! The tower layer in a real axum server on a loopback port, asked by a
//! real HTTP client, with handlers on a real SQLite database.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use timeline_core::integrations::tower::{OopsReason, RequestEnd, RequestTimelineLayer};
use timeline_core::{Report, current};
use timeline_examples::web;
use timeline_tests::bugs::database;
use timeline_tests::checks::details;
use timeline_tests::server::{self, HttpClient, client, eventually, status_timing_body};

/// A finished request as the hook saw it: URI, how it ended, its details.
type SeenRequest = (String, RequestEnd, Vec<String>);

/// What the layer's hooks saw: the requests and the reports.
#[derive(Clone, Default)]
struct Seen {
    requests: Arc<Mutex<Vec<SeenRequest>>>,
    oopses: Arc<Mutex<Vec<(String, OopsReason, Report)>>>,
}

fn layer(seen: &Seen) -> RequestTimelineLayer {
    let requests = Arc::clone(&seen.requests);
    let oopses = Arc::clone(&seen.oopses);
    RequestTimelineLayer::new()
        .server_timing(true)
        .soft_time_limit(Duration::from_millis(300))
        .on_request(move |request| {
            requests.lock().unwrap().push((
                request.uri().to_string(),
                request.end().clone(),
                details(request.timeline()),
            ));
        })
        .on_oops(move |request, report| {
            let reason = request.oops_reason().expect("a reason for every OOPS");
            oopses
                .lock()
                .unwrap()
                .push((request.uri().to_string(), reason, report));
        })
}

async fn slow() -> &'static str {
    let timeline = current().expect("the request's timeline");
    let _call = timeline.start("HTTP-get", "https://slow.example/").unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    "slow\n"
}

async fn panics() -> &'static str {
    let timeline = current().expect("the request's timeline");
    timeline
        .start("SQL-main", "SELECT 1 -- before the panic")
        .unwrap()
        .finish();
    panic!("handler bug");
}

async fn hangs() -> &'static str {
    let timeline = current().expect("the request's timeline");
    let _call = timeline
        .start("HTTP-get", "https://never.example/")
        .unwrap();
    std::future::pending::<()>().await;
    unreachable!()
}

async fn empty() -> &'static str {
    "no external actions\n"
}

struct Server {
    address: SocketAddr,
    seen: Seen,
    database: PathBuf,
    client: HttpClient,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.database);
    }
}

async fn serve(name: &str) -> Server {
    let database = database("tower", name);
    let spool = std::env::temp_dir().join(format!("timeline-tower-spool-{}", std::process::id()));
    let seen = Seen::default();
    let app = web::router(database.clone(), spool)
        .merge(
            Router::new()
                .route("/slow", get(slow))
                .route("/panics", get(panics))
                .route("/hangs", get(hangs))
                .route("/empty", get(empty)),
        )
        .layer(layer(&seen));
    Server {
        address: server::serve(app).await,
        seen,
        database,
        client: client(),
    }
}

impl Server {
    async fn ask(
        &self,
        method: &str,
        path: &str,
    ) -> Result<(StatusCode, Option<String>, String), hyper_util::client::legacy::Error> {
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.address))
            .body(Body::empty())
            .unwrap();
        let response = self.client.request(request).await?;
        Ok(status_timing_body(response).await)
    }

    /// Waits until the hooks have seen `n` requests (they run as the
    /// response is sent).
    async fn requests_seen(&self, n: usize) -> Vec<SeenRequest> {
        eventually(|| {
            let requests = self.seen.requests.lock().unwrap().clone();
            (requests.len() >= n).then_some(requests)
        })
        .await
        .unwrap_or_else(|| panic!("fewer than {n} requests reported"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_timing_header_parses_and_names_the_sql_category() {
    let server = serve("timing").await;
    let (status, timing, body) = server.ask("GET", "/products/1").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("#3 Bug 3: "), "{body}");
    let timing = timing.expect("a Server-Timing header");
    let metrics: Vec<(&str, f64)> = timing
        .split(", ")
        .map(|entry| {
            let mut params = entry.split(';');
            let name = params.next().unwrap();
            let dur = params
                .next()
                .unwrap()
                .strip_prefix("dur=")
                .unwrap()
                .parse()
                .unwrap();
            (name, dur)
        })
        .collect();
    let sql = metrics
        .iter()
        .find(|(name, _)| *name == "SQL-main")
        .expect("the SQL category");
    assert!(sql.1 > 0.0);
    let total = metrics.iter().find(|(name, _)| *name == "total").unwrap();
    assert!(total.1 >= sql.1);
    assert!(!timing.contains("SELECT"), "never a detail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_delivers_a_report_with_the_sql_statements() {
    let server = serve("oops").await;
    let (status, _, _) = server
        .ask("POST", "/bugs/7/status/Won't%20Fix")
        .await
        .unwrap();
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    server.requests_seen(1).await;
    let oopses = server.seen.oopses.lock().unwrap();
    let (uri, reason, report) = &oopses[0];
    assert!(uri.ends_with("/bugs/7/status/Won't%20Fix"));
    assert_eq!(
        *reason,
        OopsReason::ServerError(StatusCode::INTERNAL_SERVER_ERROR)
    );
    let statements: Vec<&str> = report
        .log_tuples()
        .iter()
        .map(|t| t.detail.as_str())
        .collect();
    assert!(
        statements.contains(&"SELECT id, title, status, assignee FROM bug WHERE id = 7"),
        "{statements:?}"
    );
    assert!(
        statements.contains(&r#"UPDATE bug SET status = "Won't Fix" WHERE id = 7"#),
        "{statements:?}"
    );
    let json: serde_json::Value = serde_json::to_value(report).unwrap();
    assert!(json["id"].as_str().unwrap().starts_with("OOPS-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_get_their_own_timeline() {
    let server = Arc::new(serve("concurrent").await);
    let requests: Vec<_> = (0..50)
        .map(|n| {
            let server = Arc::clone(&server);
            let product = n % 3 + 1;
            let path = if n % 2 == 0 {
                format!("/products/{product}")
            } else {
                format!("/products/{product}/naive")
            };
            tokio::spawn(async move { server.ask("GET", &path).await.unwrap().0 })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap(), StatusCode::OK);
    }
    let seen = server.requests_seen(50).await;
    assert_eq!(seen.len(), 50);
    for (uri, end, details) in &seen {
        assert_eq!(*end, RequestEnd::Responded(StatusCode::OK));
        let product = uri.split('/').nth(2).unwrap();
        let bug_queries: Vec<&String> = details.iter().filter(|d| d.contains("FROM bug")).collect();
        assert_eq!(bug_queries.len(), 1, "{uri}: {details:?}");
        assert!(
            bug_queries[0].ends_with(&format!("product = {product} ORDER BY bug.id"))
                || bug_queries[0].ends_with(&format!("product = {product} ORDER BY id")),
            "{uri}: {details:?}"
        );
        let connects = details.iter().filter(|d| d.ends_with(".sqlite\"")).count();
        assert_eq!(connects, 1, "{uri}: one connection, its own: {details:?}");
        if uri.ends_with("/naive") {
            assert_eq!(details.len(), 2 + 20, "{uri}: {details:?}");
        } else {
            assert_eq!(details.len(), 2, "{uri}: {details:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_still_produces_a_report() {
    let server = serve("panic").await;
    assert!(
        server.ask("GET", "/panics").await.is_err(),
        "the connection drops"
    );
    let seen = server.requests_seen(1).await;
    assert_eq!(seen[0].1, RequestEnd::Panicked);
    let oopses = server.seen.oopses.lock().unwrap();
    assert_eq!(oopses[0].1, OopsReason::Panicked);
    assert_eq!(
        oopses[0].2.log_tuples()[0].detail,
        "SELECT 1 -- before the panic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_soft_time_limit_is_reported() {
    let server = serve("soft-timeout").await;
    let (status, timing, _) = server.ask("GET", "/slow").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(timing.unwrap().starts_with("HTTP-get;dur="));
    server.requests_seen(1).await;
    let oopses = server.seen.oopses.lock().unwrap();
    match &oopses[0].1 {
        OopsReason::SoftTimeout { elapsed, limit } => assert!(elapsed > limit),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_leaves_no_timeline_current() {
    let server = serve("disconnect").await;
    let asking = tokio::spawn({
        let client = server.client.clone();
        let uri = format!("http://{}/hangs", server.address);
        async move { client.get(uri.parse().unwrap()).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    asking.abort(); // the client goes away mid-request
    let seen = server.requests_seen(1).await;
    assert_eq!(seen[0].1, RequestEnd::Dropped);
    assert_eq!(seen[0].2, ["https://never.example/"]);
    // Every worker thread polls something now: none has a timeline current.
    let checks: Vec<_> = (0..64)
        .map(|_| tokio::spawn(async { current().is_none() }))
        .collect();
    for check in checks {
        assert!(check.await.unwrap());
    }
    let blocking: Vec<_> = (0..16)
        .map(|_| tokio::task::spawn_blocking(|| current().is_none()))
        .collect();
    for check in blocking {
        assert!(check.await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_header_when_the_timeline_is_empty() {
    let server = serve("empty").await;
    let (status, timing, _) = server.ask("GET", "/empty").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(timing, None);
}
