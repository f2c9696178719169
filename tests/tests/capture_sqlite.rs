//! Issue #20 on SQLite: an axum app on sqlx 0.8 behind
//! `RequestTimelineLayer`, with the `TimelineLayer` installed as the docs
//! say. Every statement of a request is on its timeline before its report,
//! log line and `Server-Timing` header are made — also the statement that
//! failed, whose query event sqlx's SQLite worker emits only after it sent
//! the error to the handler; the outcome is the driver's error where the
//! source tells it (sea-orm's spans) and "not reported" where it cannot
//! (sqlx's event); durations are the driver's own; events after the report
//! are late, background work is on no timeline, and a span that never
//! closes holds no request past its settle deadline.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Request, StatusCode};
use axum::routing::get;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use timeline_core::integrations::tower::RequestTimelineLayer;
use timeline_core::integrations::tracing::TimelineLayer;
use timeline_core::{Action, Outcome, Report, Timeline, WithCallSite};
use timeline_tests::driver_log::DriverLog;
use timeline_tests::sea_orm_shape::{DbSpan, with_db_span};
use timeline_tests::server::{self, HttpClient, client, eventually, status_timing_body};
use tracing::Instrument;
use tracing_subscriber::prelude::*;

/// The subscriber the docs tell users to install, once for the binary
/// (sqlx's worker threads see only the global one), with a log of what
/// sqlx's own events report beside it.
fn driver_log() -> &'static DriverLog {
    static LOG: OnceLock<DriverLog> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = DriverLog::default();
        tracing_subscriber::registry()
            .with(TimelineLayer::new())
            .with(log.layer())
            .init();
        log
    })
}

const PEOPLE: i64 = 20;
const CONNECTIONS: u32 = 4;

/// A database file, removed when the test ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// 20 people, and a pool whose connections are all open before the first
/// request (opening one runs statements of its own).
async fn database(name: &str) -> (SqlitePool, TempFile) {
    let path = std::env::temp_dir().join(format!(
        "timeline-capture-{name}-{}.sqlite",
        std::process::id()
    ));
    let file = TempFile(path.clone());
    let pool = SqlitePoolOptions::new()
        .max_connections(CONNECTIONS)
        .min_connections(CONNECTIONS)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true),
        )
        .await
        .unwrap();
    sqlx::query("CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    for id in 1..=PEOPLE {
        sqlx::query("INSERT INTO person (id, name) VALUES (?, ?)")
            .bind(id)
            .bind(format!("person {id}"))
            .execute(&pool)
            .await
            .unwrap();
    }
    let mut connections = Vec::new();
    for _ in 0..CONNECTIONS {
        connections.push(pool.acquire().await.unwrap());
    }
    drop(connections);
    (pool, file)
}

/// The statements of the failing page of request `n`: a count, then an
/// `INSERT` that violates the primary key.
fn failing(n: u32) -> [String; 2] {
    [
        format!("SELECT count(*) FROM person WHERE id > {n} - {n}"),
        format!("INSERT INTO person (id, name) VALUES (1, 'again {n}')"),
    ]
}

type Failure = (StatusCode, String);

fn failure(error: impl std::fmt::Display) -> Failure {
    (StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
}

async fn fail(State(pool): State<SqlitePool>, Path(n): Path<u32>) -> Result<String, Failure> {
    let [count, insert] = failing(n);
    let people: i64 = sqlx::query_scalar(&count)
        .fetch_one(&pool)
        .await
        .map_err(failure)?;
    sqlx::query(&insert).execute(&pool).await.map_err(failure)?;
    Ok(format!("{people} people and one more"))
}

/// The same page, each statement's line named with `with_call_site`: sqlx's
/// worker then runs it inside that span, not the request's.
async fn fail_here(State(pool): State<SqlitePool>, Path(n): Path<u32>) -> Result<String, Failure> {
    let [count, insert] = failing(n);
    let people: i64 = sqlx::query_scalar(&count)
        .fetch_one(&pool)
        .with_call_site()
        .await
        .map_err(failure)?;
    sqlx::query(&insert)
        .execute(&pool)
        .with_call_site()
        .await
        .map_err(failure)?;
    Ok(format!("{people} people and one more"))
}

/// The same page, each statement in a sea-orm span, as sea-orm runs it.
async fn fail_orm(State(pool): State<SqlitePool>, Path(n): Path<u32>) -> Result<String, Failure> {
    let [count, insert] = failing(n);
    let people: i64 = with_db_span(
        DbSpan::QueryOne,
        "sqlite",
        &count,
        sqlx::query_scalar(&count).fetch_one(&pool),
    )
    .await
    .map_err(failure)?;
    with_db_span(
        DbSpan::Execute,
        "sqlite",
        &insert,
        sqlx::query(&insert).execute(&pool),
    )
    .await
    .map_err(failure)?;
    Ok(format!("{people} people and one more"))
}

/// The 21 statements of the sequential page of request `n`: the people,
/// then each one's name (an N+1 loop), unique to the request. (The tests
/// of this file share one driver log: each asks for pages of its own `n`.)
fn sequential(n: u32) -> Vec<String> {
    let mut statements = vec![format!("SELECT id FROM person WHERE {n} >= 0 ORDER BY id")];
    statements.extend(
        (1..=PEOPLE).map(|id| format!("SELECT name FROM person WHERE id = {id} AND {n} >= 0")),
    );
    statements
}

async fn page(State(pool): State<SqlitePool>, Path(n): Path<u32>) -> String {
    let statements = sequential(n);
    let ids: Vec<i64> = sqlx::query_scalar(&statements[0])
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut names = Vec::new();
    for statement in &statements[1..] {
        let name: String = sqlx::query_scalar(statement)
            .fetch_one(&pool)
            .await
            .unwrap();
        names.push(name);
    }
    format!("{} people: {}", ids.len(), names.join(", "))
}

async fn page_orm(State(pool): State<SqlitePool>, Path(n): Path<u32>) -> String {
    let statements = sequential(n);
    let ids: Vec<i64> = with_db_span(
        DbSpan::QueryAll,
        "sqlite",
        &statements[0],
        sqlx::query_scalar(&statements[0]).fetch_all(&pool),
    )
    .await
    .unwrap();
    let mut names = Vec::new();
    for statement in &statements[1..] {
        let name: String = with_db_span(
            DbSpan::QueryOne,
            "sqlite",
            statement,
            sqlx::query_scalar(statement).fetch_one(&pool),
        )
        .await
        .unwrap();
        names.push(name);
    }
    format!("{} people: {}", ids.len(), names.join(", "))
}

/// Runs a statement of its own once the test says so, inside the request's
/// span, after the request's report was made.
async fn late(
    State((pool, go)): State<(SqlitePool, Arc<tokio::sync::Notify>)>,
    Path(n): Path<u32>,
) -> &'static str {
    let span = tracing::Span::current();
    tokio::spawn(
        async move {
            go.notified().await;
            sqlx::query(&format!("SELECT 'late {n}'"))
                .execute(&pool)
                .await
                .unwrap();
        }
        .instrument(span),
    );
    "answered"
}

/// A request as the layer's hooks saw it.
#[derive(Clone)]
struct Seen {
    uri: String,
    timeline: Timeline,
    report: Option<Report>,
}

struct App {
    address: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    client: HttpClient,
    pool: SqlitePool,
    go: Arc<tokio::sync::Notify>,
    _database: TempFile,
}

async fn serve(name: &str, layer: RequestTimelineLayer) -> App {
    driver_log();
    let (pool, database) = database(name).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (on_oops, on_request) = (Arc::clone(&seen), Arc::clone(&seen));
    let go = Arc::new(tokio::sync::Notify::new());
    let app = Router::new()
        .route("/fail/{n}", get(fail))
        .route("/fail-orm/{n}", get(fail_orm))
        .route("/fail-here/{n}", get(fail_here))
        .route("/page/{n}", get(page))
        .route("/page-orm/{n}", get(page_orm))
        .with_state(pool.clone())
        .merge(
            Router::new()
                .route("/late/{n}", get(late))
                .with_state((pool.clone(), Arc::clone(&go))),
        )
        .layer(
            layer
                .server_timing(true)
                .on_oops(move |request, report| {
                    on_oops.lock().unwrap().push(Seen {
                        uri: request.uri().to_string(),
                        timeline: request.timeline().clone(),
                        report: Some(report),
                    })
                })
                .on_request(move |request| {
                    if request.oops_reason().is_none() {
                        on_request.lock().unwrap().push(Seen {
                            uri: request.uri().to_string(),
                            timeline: request.timeline().clone(),
                            report: None,
                        })
                    }
                }),
        );
    App {
        address: server::serve(app).await,
        seen,
        client: client(),
        pool,
        go,
        _database: database,
    }
}

impl App {
    async fn get(&self, path: &str) -> (StatusCode, Option<String>, String) {
        let request = Request::get(format!("http://{}{path}", self.address))
            .body(Body::empty())
            .unwrap();
        status_timing_body(self.client.request(request).await.unwrap()).await
    }

    async fn seen(&self, uri: &str) -> Seen {
        eventually(|| {
            let seen = self.seen.lock().unwrap();
            seen.iter().find(|s| s.uri == uri).cloned()
        })
        .await
        .unwrap_or_else(|| panic!("no request {uri} reported"))
    }
}

/// `(detail, outcome)` of each action.
fn outcomes(actions: &[Action]) -> Vec<(String, Outcome)> {
    actions
        .iter()
        .map(|a| (a.detail().to_owned(), a.outcome().clone()))
        .collect()
}

const REQUESTS: u32 = 200;

/// `REQUESTS` requests to `page`, four clients at a time; checks each
/// response: its status, its `Server-Timing` header and, for a failure,
/// the database's error in its body.
async fn ask_all(app: &Arc<App>, page: &'static str, expected: StatusCode) {
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let app = Arc::clone(app);
            tokio::spawn(async move {
                for n in (client..REQUESTS).step_by(4) {
                    let (status, timing, body) = app.get(&format!("/{page}/{n}")).await;
                    assert_eq!(status, expected, "{body}");
                    let timing = timing.unwrap_or_else(|| panic!("no Server-Timing for {n}"));
                    assert!(timing.contains("SQL-main x2"), "request {n}: {timing}");
                    if expected == StatusCode::INTERNAL_SERVER_ERROR {
                        assert!(
                            body.contains("UNIQUE constraint failed: person.id"),
                            "{body}"
                        );
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_of_200_failing_requests_has_its_failed_statement_in_its_oops_report() {
    let app = Arc::new(serve("failing", RequestTimelineLayer::new()).await);
    ask_all(&app, "fail", StatusCode::INTERNAL_SERVER_ERROR).await;
    for n in 0..REQUESTS {
        let seen = app.seen(&format!("/fail/{n}")).await;
        let report = seen.report.expect("an OOPS report");
        // sqlx's query event carries no error: the failed INSERT is there,
        // and its outcome says that sqlx did not report one.
        let [count, insert] = failing(n);
        assert_eq!(
            outcomes(report.actions()),
            [
                (count, Outcome::NotReported),
                (insert, Outcome::NotReported)
            ],
            "request {n}"
        );
        assert!(report.to_json().contains(r#""outcome":"not_reported""#));
        assert_eq!((report.late(), seen.timeline.late()), (0, 0));
        assert_eq!(seen.timeline.len(), 2, "the report and the timeline agree");
    }
}

/// sqlx's worker enters the span `with_call_site` makes, not the request's:
/// the layer still waits for its event, which the report then has, with
/// the line the handler named.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_call_site_each_failed_statement_is_in_its_report_with_its_line() {
    let app = Arc::new(serve("failing-here", RequestTimelineLayer::new()).await);
    ask_all(&app, "fail-here", StatusCode::INTERNAL_SERVER_ERROR).await;
    for n in 0..REQUESTS {
        let seen = app.seen(&format!("/fail-here/{n}")).await;
        let report = seen.report.expect("an OOPS report");
        let [count, insert] = failing(n);
        assert_eq!(
            outcomes(report.actions()),
            [
                (count, Outcome::NotReported),
                (insert, Outcome::NotReported)
            ],
            "request {n}"
        );
        for action in report.actions() {
            let site = action.call_site().expect("the line the handler named");
            assert!(site.file().ends_with("capture_sqlite.rs"), "{site:?}");
        }
        assert_eq!((report.late(), seen.timeline.late()), (0, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_sea_orm_s_spans_each_failed_statement_has_the_database_s_error() {
    let app = Arc::new(serve("failing_orm", RequestTimelineLayer::new()).await);
    ask_all(&app, "fail-orm", StatusCode::INTERNAL_SERVER_ERROR).await;
    for n in 0..REQUESTS {
        let seen = app.seen(&format!("/fail-orm/{n}")).await;
        let report = seen.report.expect("an OOPS report");
        let [count, insert] = failing(n);
        let recorded = outcomes(report.actions());
        assert_eq!(recorded.len(), 2, "request {n}: {recorded:?}");
        assert_eq!(recorded[0], (count, Outcome::Ok));
        assert_eq!(recorded[1].0, insert);
        match &recorded[1].1 {
            Outcome::Error(text) => {
                assert!(
                    text.contains("UNIQUE constraint failed: person.id"),
                    "{text}"
                )
            }
            other => panic!("request {n}: the INSERT recorded as {other:?}"),
        }
        assert!(report.actions().iter().all(|a| !a.is_concurrent()));
    }
}

/// Checks a sequential page's timeline: its 21 statements, none
/// concurrent, no violation, each as long as sqlx measured it (within 20%
/// and 0.5 ms).
fn check_sequential(n: u32, timeline: &Timeline) {
    let actions = timeline.actions();
    let details: Vec<&str> = actions.iter().map(Action::detail).collect();
    assert_eq!(details, sequential(n), "request {n}");
    assert!(
        !actions.iter().any(Action::is_concurrent) && timeline.violations().is_empty(),
        "request {n}:\n{}",
        timeline.waterfall(80)
    );
    for action in &actions {
        let driver = driver_log().elapsed(action.detail());
        assert_eq!(driver.len(), 1, "{}: {driver:?}", action.detail());
        let (duration, elapsed) = (action.duration().unwrap(), driver[0]);
        let tolerance = elapsed / 5 + Duration::from_micros(500);
        assert!(
            duration.abs_diff(elapsed) <= tolerance,
            "request {n}: {} took {duration:?}, sqlx measured {elapsed:?}",
            action.detail()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_sqlx_statements_stay_sequential_and_last_what_sqlx_measured() {
    let app = serve("sequential", RequestTimelineLayer::new()).await;
    for n in 0..200 {
        let (status, _, body) = app.get(&format!("/page/{n}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        check_sequential(n, &app.seen(&format!("/page/{n}")).await.timeline);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_sea_orm_statements_stay_sequential_and_last_what_sqlx_measured() {
    // sqlx's SQLite worker holds each sea-orm span until after it sent the
    // rows: neither stretched nor concurrent, over 1,000 pages.
    let app = serve("sequential_orm", RequestTimelineLayer::new()).await;
    for n in 1_000..2_000 {
        let (status, _, body) = app.get(&format!("/page-orm/{n}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let timeline = app.seen(&format!("/page-orm/{n}")).await.timeline;
        check_sequential(n, &timeline);
        assert!(
            timeline
                .actions()
                .iter()
                .all(|a| a.outcome() == &Outcome::Ok)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_after_the_report_is_counted_late_and_lands_on_no_other_request() {
    let app = Arc::new(serve("late", RequestTimelineLayer::new()).await);
    let (status, _, _) = app.get("/late/1").await;
    assert_eq!(status, StatusCode::OK);
    let first = app.seen("/late/1").await.timeline;
    assert!(first.is_empty());
    // Another request runs while the first one's statement arrives late.
    let other = {
        let app = Arc::clone(&app);
        tokio::spawn(async move { app.get("/page/3007").await })
    };
    app.go.notify_one();
    let late = eventually(|| (first.late() == 1).then_some(())).await;
    assert!(late.is_some(), "the late statement was not counted");
    assert_eq!(other.await.unwrap().0, StatusCode::OK);
    check_sequential(3007, &app.seen("/page/3007").await.timeline);
    assert!(first.is_empty(), "a late statement is not stored");
    let report = first.report();
    assert_eq!(report.late(), 1);
    assert!(report.to_json().contains(r#""dropped":0,"late":1,"#));
    assert!(format!("{:#}", first.summary()).contains("1 actions arrived after the report"));
    // It did run: sqlx reported it.
    assert_eq!(driver_log().elapsed("SELECT 'late 1'").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pool_s_background_work_is_on_no_request_s_timeline() {
    let app = Arc::new(serve("background", RequestTimelineLayer::new()).await);
    // A task of no request (a pool's health check, a cache refresher) on
    // the same pool and worker threads as the requests.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let background = {
        let (pool, stop) = (app.pool.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut runs = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                sqlx::query("SELECT 'background'")
                    .execute(&pool)
                    .await
                    .unwrap();
                runs += 1;
                tokio::task::yield_now().await;
            }
            runs
        })
    };
    let pages = 2_000..2_050;
    for n in pages.clone() {
        let (status, _, _) = app.get(&format!("/page/{n}")).await;
        assert_eq!(status, StatusCode::OK);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(background.await.unwrap() > 0);
    for n in pages {
        check_sequential(n, &app.seen(&format!("/page/{n}")).await.timeline);
    }
}

/// A request whose handler leaves a thread inside its span: entered until
/// the test lets go (`stuck`), or a clone of the span and a started sea-orm
/// span leaked (`leaked`), never closing.
async fn left_behind(
    stuck: bool,
    release: Arc<Mutex<Option<std::sync::mpsc::Receiver<()>>>>,
) -> &'static str {
    let span = tracing::Span::current();
    if stuck {
        let release = release.lock().unwrap().take().expect("one stuck request");
        let (entered, inside) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _in_span = span.enter();
            entered.send(()).unwrap();
            let _ = release.recv();
        });
        inside.recv().unwrap();
    } else {
        let statement = tracing::info_span!(
            target: "sea_orm::database::db_connection",
            "sea_orm.execute",
            db.operation = "SELECT",
            db.statement = "SELECT 'never finished'",
            otel.status_code = tracing::field::Empty,
        );
        statement.in_scope(|| {});
        std::mem::forget(statement);
        std::mem::forget(span);
    }
    "left behind"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_left_behind_hold_a_request_no_longer_than_its_settle_deadline() {
    let (release, released) = std::sync::mpsc::channel();
    let released = Arc::new(Mutex::new(Some(released)));
    driver_log();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let layer = |timeout: Duration| {
        let hook = Arc::clone(&seen);
        RequestTimelineLayer::new()
            .settle_timeout(timeout)
            .on_request(move |request| {
                hook.lock()
                    .unwrap()
                    .push((request.uri().to_string(), request.timeline().clone()))
            })
    };
    let app = Router::new()
        .route(
            "/stuck",
            get(move || left_behind(true, Arc::clone(&released))),
        )
        .layer(layer(Duration::from_millis(300)))
        .merge(
            Router::new()
                .route(
                    "/leaked",
                    get(|| left_behind(false, Arc::new(Mutex::new(None)))),
                )
                // Far longer than the request takes: had it waited, the
                // test would see it.
                .layer(layer(Duration::from_secs(20))),
        );
    let address = server::serve(app).await;
    let client = client();
    let ask = |path: &'static str| {
        let request = Request::get(format!("http://{address}{path}"))
            .body(Body::empty())
            .unwrap();
        let started = Instant::now();
        let response = client.request(request);
        async move {
            let (status, _, _) = status_timing_body(response.await.unwrap()).await;
            (status, started.elapsed())
        }
    };
    // A thread that never leaves the request's span: the request waits for
    // it until the deadline, and no longer.
    let (status, took) = ask("/stuck").await;
    assert_eq!(status, StatusCode::OK);
    assert!(took >= Duration::from_millis(300), "did not wait: {took:?}");
    assert!(
        took < Duration::from_secs(3),
        "waited past the deadline: {took:?}"
    );
    release.send(()).unwrap();
    // Spans that are never entered again hold nothing: no wait at all.
    let (status, took) = ask("/leaked").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        took < Duration::from_secs(10),
        "waited for a leaked span: {took:?}"
    );
    let timeline = eventually(|| {
        let seen = seen.lock().unwrap();
        seen.iter()
            .find(|(uri, _)| uri == "/leaked")
            .map(|(_, t)| t.clone())
    })
    .await
    .unwrap();
    let actions = timeline.actions();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].duration(), None, "shown as unfinished");
}
