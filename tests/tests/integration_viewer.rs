//! The recent-requests viewer of the tower layer in a real axum server on
//! a loopback port, asked by a real HTTP client: the index, each request's
//! page and downloads, requests still running, access, bounds, and what
//! the layer leaves for outer layers (log line, response extensions).

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::Value;
use timeline_core::integrations::tower::{RequestTimelineLayer, TimelineStats, ViewerOptions};
use timeline_tests::viewer_app::{self, HANG_DETAIL, serve};
use tower::{Service, ServiceExt};

/// The viewer's ids of the finished requests on the index, newest first.
fn finished_ids(index: &str) -> Vec<u64> {
    let finished = &index[index.find("id=\"finished\"").unwrap()..];
    finished
        .split("<tr class=\"finished")
        .skip(1)
        .map(|row| {
            let link = &row[row.find("href=\"/_timeline/").unwrap() + 17..];
            link[..link.find('"').unwrap()].parse().unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_lists_finished_requests_with_their_figures_and_flags() {
    let server = serve("index", viewer_app::loopback_only()).await;
    assert_eq!(server.ask("/products/1", &[]).await.0, StatusCode::OK);
    assert_eq!(server.ask("/products/1/naive", &[]).await.0, StatusCode::OK);
    server.kept(2).await;
    let (status, headers, index) = server.ask("/_timeline/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    assert!(index.contains("<h2>Finished (2)</h2>"), "{index}");
    assert!(index.contains(">/products/1/naive</a>"));
    assert!(
        index.contains("N+1 ×"),
        "the naive page repeats a statement"
    );
    assert_eq!(finished_ids(&index).len(), 2);
    // The viewer's own request is not recorded.
    let (_, _, again) = server.ask("/_timeline", &[]).await;
    assert!(again.contains("<h2>Finished (2)</h2>"));
    assert_eq!(server.viewer.kept_requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_has_a_page_a_json_report_and_a_trace() {
    let server = serve("pages", viewer_app::loopback_only()).await;
    let (status, _, _) = server.ask("/bugs/7/status/Won't%20Fix", &[]).await;
    assert_eq!(
        status,
        StatusCode::METHOD_NOT_ALLOWED,
        "GET on a POST route"
    );
    server.ask("/products/2/naive?token=secret", &[]).await;
    server.kept(2).await;
    let (_, _, index) = server.ask("/_timeline/", &[]).await;
    let newest = finished_ids(&index)[0];

    let (status, _, page) = server.ask(&format!("/_timeline/{newest}"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<h1 id=\"request-line\">GET /products/2/naive → 200"));
    assert!(
        !page.contains("token=secret"),
        "no query string without a filter"
    );
    assert!(page.contains("SELECT name, email FROM person WHERE id = ?"));
    assert!(page.contains("<tr class=\"action\""));

    let (status, headers, json) = server.ask(&format!("/_timeline/{newest}.json"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"OOPS-")
    );
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["request"]["method"], "GET");
    assert_eq!(report["request"]["path"], "/products/2/naive");
    assert_eq!(report["request"]["status"], 200);
    assert!(report["actions"].as_array().unwrap().len() > 3);

    let (status, _, trace) = server
        .ask(&format!("/_timeline/{newest}.trace.json"), &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    let trace: Value = serde_json::from_str(&trace).unwrap();
    assert!(trace["traceEvents"].as_array().unwrap().len() > 3);

    for missing in ["/_timeline/999999", "/_timeline/abc", "/_timeline/1.exe"] {
        assert_eq!(server.ask(missing, &[]).await.0, StatusCode::NOT_FOUND);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_request_shows_what_it_waits_on_then_ends_as_dropped() {
    let server = serve("running", viewer_app::loopback_only()).await;
    let hanging = server.start_hanging();
    server.running(1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, _, index) = server.ask("/_timeline/", &[]).await;
    assert!(index.contains("<h2>Running (1)</h2>"), "{index}");
    let running = &index[index.find("<tr class=\"running\"").unwrap()..];
    assert!(running.contains(">/hangs</a>"));
    assert!(running.contains(&HANG_DETAIL.replace('>', "&gt;")));
    assert!(running.contains(", ends now</span>"));
    let link = &running[running.find("href=\"/_timeline/").unwrap() + 17..];
    let id: u64 = link[..link.find('"').unwrap()].parse().unwrap();

    let (_, _, page) = server.ask(&format!("/_timeline/{id}"), &[]).await;
    assert!(page.contains("<strong id=\"running\">Still running after "));
    assert!(page.contains("unfinished: ends now"));

    // The client goes away: the request is dropped, and listed as such.
    hanging.abort();
    server.kept(1).await;
    assert_eq!(server.viewer.running_requests(), 0);
    let (_, _, json) = server.ask(&format!("/_timeline/{id}.json"), &[]).await;
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["request"]["reason"], "dropped");
    let last = report["actions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["detail"], HANG_DETAIL);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_is_refused_unless_the_predicate_allows_it() {
    let options = ViewerOptions::new(|request| {
        request
            .headers
            .get("x-viewer-token")
            .is_some_and(|token| token == "let-me-in")
    });
    let server = serve("access", options).await;
    server.ask("/products/1", &[]).await;
    server.kept(1).await;
    let (status, _, body) = server.ask("/_timeline/", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!body.contains("products"));
    let (status, _, _) = server
        .ask("/_timeline/1.json", &[("x-viewer-token", "nope")])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, index) = server
        .ask("/_timeline/", &[("x-viewer-token", "let-me-in")])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(index.contains(">/products/1</a>"));
    // Refused requests are not recorded either.
    assert_eq!(server.viewer.kept_requests(), 1);

    // A predicate that panics refuses.
    let server = serve(
        "access-panics",
        ViewerOptions::new(|_| panic!("predicate bug")),
    )
    .await;
    assert_eq!(
        server.ask("/_timeline/", &[]).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(server.ask("/products/1", &[]).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_requests_keeps_the_ring_within_its_bounds() {
    let max_bytes = 64 * 1024;
    let server = serve(
        "flood",
        viewer_app::loopback_only()
            .max_requests(50)
            .max_bytes(max_bytes),
    )
    .await;
    for n in 0..120 {
        let path = if n % 3 == 0 {
            format!("/hostile/{n}")
        } else {
            format!("/products/{}/naive", n % 3 + 1)
        };
        server.ask(&path, &[]).await;
        assert!(server.viewer.kept_bytes() <= max_bytes);
        assert!(server.viewer.kept_requests() <= 50);
    }
    let (_, _, index) = server.ask("/_timeline/", &[]).await;
    let kept = finished_ids(&index);
    assert!(!kept.is_empty());
    assert!(kept.len() < 50, "64 KiB hold fewer than 50 of these");
    // The hostile requests' 64 KiB details are larger than the bound: they
    // are listed, without a report.
    assert!(index.contains("too large to keep"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_line_ends_with_the_oops_id() {
    let server = serve("log", viewer_app::loopback_only()).await;
    assert!(!server.responds("/panics").await, "the connection drops");
    server.ask("/products/1", &[]).await;
    server.kept(2).await;
    let lines = server.lines.lock().unwrap().clone();
    let panicked = lines.iter().find(|l| l.starts_with("GET /panics")).unwrap();
    assert!(
        panicked.starts_with("GET /panics panicked: 1 queries/external actions issued in "),
        "{panicked}"
    );
    let oops = panicked.rsplit(' ').next().unwrap();
    assert!(oops.starts_with("OOPS-"), "{panicked}");
    let fine = lines
        .iter()
        .find(|l| l.starts_with("GET /products/1"))
        .unwrap();
    assert!(fine.ends_with(" seconds"), "no OOPS id: {fine}");
    // The report names the panic.
    let (_, _, index) = server.ask("/_timeline/", &[]).await;
    assert!(index.contains(oops));
    let id = finished_ids(&index)[1];
    let (_, _, json) = server.ask(&format!("/_timeline/{id}.json"), &[]).await;
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["id"], oops);
    assert_eq!(report["request"]["reason"], "panicked");
    assert_eq!(report["request"]["error"], "handler bug <script>");
}

#[tokio::test]
async fn the_response_carries_the_action_count_and_duration_for_outer_layers() {
    async fn handler(_: http::Request<String>) -> Result<http::Response<String>, String> {
        let timeline = timeline_core::current().unwrap();
        for n in 0..3 {
            timeline
                .start("SQL-main", format!("SELECT {n}"))
                .unwrap()
                .finish();
        }
        let _tx = timeline.start_nested("SQL-main", "BEGIN").unwrap();
        Ok(http::Response::builder()
            .status(503)
            .body(String::new())
            .unwrap())
    }
    let mut service = tower::ServiceBuilder::new()
        .layer(RequestTimelineLayer::new().on_oops(|_, _| {}))
        .service_fn(handler);
    let response = service
        .ready()
        .await
        .unwrap()
        .call(http::Request::new(String::new()))
        .await
        .unwrap();
    let stats = response.extensions().get::<TimelineStats>().unwrap();
    assert_eq!(stats.action_count(), 3, "the nesting action is not counted");
    assert!(stats.duration() > Duration::ZERO);
    assert!(stats.oops_id().unwrap().starts_with("OOPS-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_and_writers_of_the_ring_side_by_side() {
    let server = std::sync::Arc::new(
        serve(
            "readers",
            viewer_app::loopback_only()
                .max_requests(20)
                .max_bytes(256 * 1024),
        )
        .await,
    );
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let server = std::sync::Arc::clone(&server);
            tokio::spawn(async move {
                for _ in 0..15 {
                    let (status, _, index) = server.ask("/_timeline/", &[]).await;
                    assert_eq!(status, StatusCode::OK);
                    assert!(index.contains("<h2>Finished ("));
                }
            })
        })
        .collect();
    let writers: Vec<_> = (0..60)
        .map(|n| {
            let server = std::sync::Arc::clone(&server);
            tokio::spawn(async move {
                server
                    .ask(&format!("/products/{}/naive", n % 3 + 1), &[])
                    .await
                    .0
            })
        })
        .collect();
    for writer in writers {
        assert_eq!(writer.await.unwrap(), StatusCode::OK);
    }
    for reader in readers {
        reader.await.unwrap();
    }
    server.kept(20).await;
    assert_eq!(server.viewer.kept_requests(), 20);
    assert!(server.viewer.kept_bytes() <= 256 * 1024);
    assert_eq!(server.viewer.running_requests(), 0);
}

#[tokio::test]
async fn without_a_viewer_its_path_is_the_application_s() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let paths = std::sync::Arc::clone(&seen);
    let mut service = tower::ServiceBuilder::new()
        .layer(RequestTimelineLayer::new().on_request(move |request| {
            paths.lock().unwrap().push(request.uri().path().to_owned());
        }))
        .service_fn(|request: http::Request<String>| async move {
            Ok::<_, String>(http::Response::new(format!(
                "app: {}",
                request.uri().path()
            )))
        });
    let response = service
        .ready()
        .await
        .unwrap()
        .call(
            http::Request::get("/_timeline/")
                .body(String::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.body(), "app: /_timeline/");
    assert_eq!(*seen.lock().unwrap(), ["/_timeline/"]);
}

#[tokio::test]
async fn the_query_string_reaches_the_report_only_through_the_detail_filter() {
    async fn path_in_report(layer: RequestTimelineLayer) -> String {
        let reports = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&reports);
        let mut service = tower::ServiceBuilder::new()
            .layer(layer.on_oops(move |_, report| seen.lock().unwrap().push(report)))
            .service_fn(|_: http::Request<String>| async {
                Ok::<_, String>(
                    http::Response::builder()
                        .status(500)
                        .body(String::new())
                        .unwrap(),
                )
            });
        service
            .ready()
            .await
            .unwrap()
            .call(
                http::Request::get("/search?q=bugs&token=secret")
                    .body(String::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        let report = reports.lock().unwrap().pop().unwrap();
        let request = report.request().unwrap();
        assert_eq!(request.status(), Some(500));
        assert_eq!(
            request.reason(),
            Some(timeline_core::ReportReason::ServerError)
        );
        request.path().to_owned()
    }
    assert_eq!(path_in_report(RequestTimelineLayer::new()).await, "/search");
    let filtered = RequestTimelineLayer::new().timeline_builder(|| {
        timeline_core::Timeline::builder().detail_filter(|d| d.replace("secret", "[redacted]"))
    });
    assert_eq!(
        path_in_report(filtered).await,
        "/search?q=bugs&token=[redacted]"
    );
}
