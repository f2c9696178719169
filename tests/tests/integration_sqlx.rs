//! Issue #9: an axum 0.8 app on sqlx 0.8 (SQLite) behind
//! `RequestTimelineLayer`, with the `TimelineLayer` installed and no
//! annotation on any query, records every query on its request's timeline —
//! although sqlx emits the query events on its own SQLite worker thread.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Request, StatusCode};
use axum::routing::get;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use timeline_core::integrations::tower::RequestTimelineLayer;
use timeline_core::integrations::tracing::TimelineLayer;
use timeline_core::{Action, Timeline};
use timeline_tests::checks::details;
use timeline_tests::log::Buffer;
use timeline_tests::server::{self, HttpClient, client, eventually, status_timing_body};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

/// The setup the module documentation tells users to copy, installed once
/// for the whole test binary: sqlx's worker threads only see the global
/// subscriber.
fn log() -> &'static Buffer {
    static LOG: OnceLock<Buffer> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(move || writer.clone())
                    .with_ansi(false)
                    .with_filter(EnvFilter::new("info")),
            )
            .with(TimelineLayer::new())
            .init();
        buffer
    })
}

/// A finished request as the tower layer's hook saw it.
#[derive(Clone, Debug)]
struct Seen {
    uri: String,
    timeline: Timeline,
}

struct App {
    address: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    client: HttpClient,
    _database: tempfile_path::TempPath,
}

/// A database file removed when the test ends.
mod tempfile_path {
    pub(super) struct TempPath(pub(super) std::path::PathBuf);

    impl Drop for TempPath {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let mut path = self.0.clone().into_os_string();
                path.push(suffix);
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

const PEOPLE: i64 = 20;
const CONNECTIONS: u32 = 4;

async fn database(name: &str) -> (SqlitePool, tempfile_path::TempPath) {
    let path = std::env::temp_dir().join(format!(
        "timeline-sqlx-{name}-{}.sqlite",
        std::process::id()
    ));
    let file = tempfile_path::TempPath(path.clone());
    let pool = SqlitePoolOptions::new()
        .max_connections(CONNECTIONS)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true),
        )
        .await
        .unwrap();
    for statement in [
        "CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
        "CREATE TABLE bug (id INTEGER PRIMARY KEY, title TEXT NOT NULL, assignee INTEGER NOT NULL)",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    for id in 1..=PEOPLE {
        sqlx::query("INSERT INTO person (id, name) VALUES (?, ?)")
            .bind(id)
            .bind(format!("person {id}"))
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO bug (id, title, assignee) VALUES (?, ?, ?)")
            .bind(id)
            .bind(format!("bug {id}"))
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
    }
    // Every connection open before the first request: opening one runs
    // statements of its own, which would land on the request that opened it.
    let mut connections = Vec::new();
    for _ in 0..CONNECTIONS {
        connections.push(pool.acquire().await.unwrap());
    }
    drop(connections);
    (pool, file)
}

/// One bug and its assignee, with the id in the statement text so that
/// each request's statements are its own.
async fn bug(State(pool): State<SqlitePool>, Path(id): Path<i64>) -> String {
    let title: String = sqlx::query_scalar(&format!("SELECT title FROM bug WHERE id = {id}"))
        .fetch_one(&pool)
        .await
        .unwrap();
    let name: String = sqlx::query_scalar(&format!(
        "SELECT name FROM person WHERE id = (SELECT assignee FROM bug WHERE id = {id})"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    format!("{title}: {name}")
}

/// The N+1 page: the bugs, then each assignee on its own.
async fn naive(State(pool): State<SqlitePool>) -> String {
    let bugs: Vec<(i64, i64)> = sqlx::query_as("SELECT id, assignee FROM bug ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut page = String::new();
    for (id, assignee) in bugs {
        let name: String = sqlx::query_scalar("SELECT name FROM person WHERE id = ?")
            .bind(assignee)
            .fetch_one(&pool)
            .await
            .unwrap();
        page.push_str(&format!("{id} {name}\n"));
    }
    page
}

/// Slow statements polled together.
async fn together(State(pool): State<SqlitePool>) -> String {
    let queries = (1..=CONNECTIONS).map(|n| {
        let pool = pool.clone();
        async move {
            let sql = format!(
                "WITH RECURSIVE c(x) AS (SELECT {n} UNION ALL SELECT x + 1 FROM c WHERE x < 100000) SELECT count(*) FROM c"
            );
            sqlx::query_scalar::<_, i64>(&sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    });
    let counts = futures_join_all(queries).await;
    format!("{counts:?}")
}

/// `futures::future::join_all` without the dependency: every future polled
/// on each wake of the task.
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

async fn serve(name: &str) -> App {
    log();
    let (pool, database) = database(name).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook = Arc::clone(&seen);
    let app = Router::new()
        .route("/bugs/{id}", get(bug))
        .route("/naive", get(naive))
        .route("/together", get(together))
        .route(
            "/logs",
            get(|| async {
                tracing::info!("a request that logs");
                "logged"
            }),
        )
        .with_state(pool)
        .layer(
            RequestTimelineLayer::new()
                .server_timing(true)
                .on_request(move |request| {
                    hook.lock().unwrap().push(Seen {
                        uri: request.uri().to_string(),
                        timeline: request.timeline().clone(),
                    })
                }),
        );
    App {
        address: server::serve(app).await,
        seen,
        client: client(),
        _database: database,
    }
}

impl App {
    /// Status, `Server-Timing` header and body.
    async fn get(&self, path: &str) -> (StatusCode, Option<String>, String) {
        let request = Request::get(format!("http://{}{path}", self.address))
            .body(Body::empty())
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        status_timing_body(response).await
    }

    /// The timeline of the request for `uri`, once the hook has seen it.
    async fn timeline(&self, uri: &str) -> Timeline {
        eventually(|| {
            let seen = self.seen.lock().unwrap();
            seen.iter()
                .find(|s| s.uri == uri)
                .map(|s| s.timeline.clone())
        })
        .await
        .unwrap_or_else(|| panic!("no request {uri} reported"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_of_a_request_is_on_its_timeline_without_annotations() {
    let app = serve("plain").await;
    let (status, timing, body) = app.get("/bugs/3").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "bug 3: person 3"));
    let timeline = app.timeline("/bugs/3").await;
    let actions = timeline.actions();
    assert_eq!(
        details(&timeline),
        [
            "SELECT title FROM bug WHERE id = 3",
            "SELECT name FROM person WHERE id = (SELECT assignee FROM bug WHERE id = 3)"
        ]
    );
    assert!(actions.iter().all(|a| a.category() == "SQL-main"));
    assert!(actions.iter().all(|a| a.duration().is_some()));
    let timing = timing.expect("a Server-Timing header");
    assert!(timing.starts_with("SQL-main;dur="), "{timing}");
    assert!(timing.contains("SQL-main x2"), "{timing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_n_plus_one_page_shows_as_a_repeated_statement() {
    let app = serve("naive").await;
    let (status, _, body) = app.get("/naive").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.lines().count(), PEOPLE as usize);
    let timeline = app.timeline("/naive").await;
    assert_eq!(timeline.len(), 1 + PEOPLE as usize);
    let summary = timeline.summary();
    let repeated = summary.repeated_statements();
    assert_eq!(repeated.len(), 1, "{summary:#}");
    assert_eq!(repeated[0].count(), PEOPLE as u64);
    assert_eq!(
        repeated[0].statement(),
        "SELECT name FROM person WHERE id = ?"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_each_record_exactly_their_own_queries() {
    let app = Arc::new(serve("concurrent").await);
    let requests: Vec<_> = (1..=PEOPLE)
        .map(|id| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.get(&format!("/bugs/{id}")).await })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap().0, StatusCode::OK);
    }
    for id in 1..=PEOPLE {
        let timeline = app.timeline(&format!("/bugs/{id}")).await;
        assert_eq!(
            details(&timeline),
            [
                format!("SELECT title FROM bug WHERE id = {id}"),
                format!(
                    "SELECT name FROM person WHERE id = (SELECT assignee FROM bug WHERE id = {id})"
                )
            ],
            "request {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_polled_together_are_all_recorded_some_as_concurrent() {
    let app = serve("together").await;
    let (status, _, body) = app.get("/together").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let timeline = app.timeline("/together").await;
    let actions = timeline.actions();
    assert_eq!(actions.len(), CONNECTIONS as usize);
    assert!(
        actions.iter().any(Action::is_concurrent),
        "{}",
        timeline.waterfall(60)
    );
    assert!(!timeline.violations().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_info_log_keeps_its_lines_and_gets_no_sqlx_debug_lines() {
    let app = serve("log").await;
    app.get("/logs").await;
    app.get("/bugs/5").await;
    assert_eq!(app.timeline("/bugs/5").await.len(), 2);
    let log = log().text();
    assert!(log.contains("a request that logs"), "{log}");
    // sqlx's DEBUG query events reached the timeline, not the log (a WARN
    // for a statement slower than a second on a loaded machine may).
    assert!(!log.lines().any(|line| line.contains("DEBUG")), "{log}");
    assert!(!log.contains("WHERE id = 5"), "{log}");
    assert!(!log.contains("timeline_core"), "{log}");
}
