//! Issue #20 on PostgreSQL (the cluster `scripts/test` starts; each test in
//! a schema of its own): an axum app behind `RequestTimelineLayer` with
//! sqlx 0.8 (postgres) through the `tracing` bridge, sea-orm's spans around
//! sqlx, and diesel 2 through its `Instrumentation`. 200 requests to a
//! failing page give 200 OOPS reports, each with the failed statement and
//! what its source tells of it: PostgreSQL's error through diesel and
//! sea-orm, "not reported" through sqlx's event, which carries no error.
//! Sequential statements stay sequential and last what sqlx measured.
//!
//! Without the cluster these tests fail, saying why and naming
//! `scripts/test`; they never pass silently.

use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Request, StatusCode};
use axum::routing::get;
use diesel::connection::{Connection, SimpleConnection};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use sqlx::postgres::{PgPool, PgPoolOptions};
use timeline_core::integrations::diesel::TimelineInstrumentation;
use timeline_core::integrations::tower::RequestTimelineLayer;
use timeline_core::integrations::tracing::TimelineLayer;
use timeline_core::{Action, Outcome, Report, Timeline};
use timeline_tests::driver_log::DriverLog;
use timeline_tests::postgres::TestSchema;
use timeline_tests::sea_orm_shape::{DbSpan, with_db_span};
use timeline_tests::server::{self, HttpClient, client, eventually, status_timing_body};
use tracing_subscriber::prelude::*;

/// The subscriber the docs tell users to install, once for the binary,
/// with a log of what sqlx's own events report beside it.
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
const REQUESTS: u32 = 200;

diesel::table! {
    /// The people of the test's schema.
    person (id) {
        /// The primary key.
        id -> BigInt,
        /// `person N`.
        name -> Text,
    }
}

/// A test's own schema with 20 people in it.
fn test_schema(test: &str) -> TestSchema {
    let schema = TestSchema::create(test);
    let mut conn = PgConnection::establish(schema.url()).unwrap();
    conn.batch_execute(
        "CREATE TABLE person (id BIGINT PRIMARY KEY, name TEXT NOT NULL); \
         INSERT INTO person (id, name) SELECT n, 'person ' || n FROM generate_series(1, 20) n;",
    )
    .unwrap();
    schema
}

/// PostgreSQL's text for the `INSERT` of an id that exists.
const DUPLICATE: &str = "duplicate key value violates unique constraint \"person_pkey\"";

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

async fn sqlx_fail(State(pool): State<PgPool>, Path(n): Path<u32>) -> Result<String, Failure> {
    let [count, insert] = failing(n);
    let people: i64 = sqlx::query_scalar(&count)
        .fetch_one(&pool)
        .await
        .map_err(failure)?;
    sqlx::query(&insert).execute(&pool).await.map_err(failure)?;
    Ok(format!("{people} people and one more"))
}

async fn orm_fail(State(pool): State<PgPool>, Path(n): Path<u32>) -> Result<String, Failure> {
    let [count, insert] = failing(n);
    let people: i64 = with_db_span(
        DbSpan::QueryOne,
        "postgresql",
        &count,
        sqlx::query_scalar(&count).fetch_one(&pool),
    )
    .await
    .map_err(failure)?;
    with_db_span(
        DbSpan::Execute,
        "postgresql",
        &insert,
        sqlx::query(&insert).execute(&pool),
    )
    .await
    .map_err(failure)?;
    Ok(format!("{people} people and one more"))
}

/// The 21 statements of the sequential page of request `n`.
fn sequential(n: u32) -> Vec<String> {
    let mut statements = vec![format!("SELECT id FROM person WHERE {n} >= 0 ORDER BY id")];
    statements.extend(
        (1..=PEOPLE).map(|id| format!("SELECT name FROM person WHERE id = {id} AND {n} >= 0")),
    );
    statements
}

async fn sqlx_page(State(pool): State<PgPool>, Path(n): Path<u32>) -> String {
    let statements = sequential(n);
    let ids: Vec<i64> = sqlx::query_scalar(&statements[0])
        .fetch_all(&pool)
        .await
        .unwrap();
    for statement in &statements[1..] {
        let _: String = sqlx::query_scalar(statement)
            .fetch_one(&pool)
            .await
            .unwrap();
    }
    format!("{} people", ids.len())
}

/// A pool of diesel connections: a request takes one and gives it back.
#[derive(Clone)]
struct DieselPool {
    idle: Arc<Mutex<Receiver<PgConnection>>>,
    back: Sender<PgConnection>,
}

impl DieselPool {
    fn new(schema: &TestSchema) -> DieselPool {
        let (back, idle) = channel();
        for _ in 0..CONNECTIONS {
            let mut conn = PgConnection::establish(schema.url()).unwrap();
            conn.set_instrumentation(TimelineInstrumentation::new());
            back.send(conn).unwrap();
        }
        DieselPool {
            idle: Arc::new(Mutex::new(idle)),
            back,
        }
    }

    /// Runs `f` with a connection on a blocking thread, with the request's
    /// timeline (`with_current`).
    async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut PgConnection) -> R + Send + 'static,
    ) -> R {
        let pool = self.clone();
        tokio::task::spawn_blocking(timeline_core::with_current(move || {
            let mut conn = pool.idle.lock().unwrap().recv().unwrap();
            let result = f(&mut conn);
            pool.back.send(conn).unwrap();
            result
        }))
        .await
        .unwrap()
    }
}

async fn diesel_fail(
    State(pool): State<DieselPool>,
    Path(n): Path<u32>,
) -> Result<String, Failure> {
    pool.run(move |conn| {
        let people: i64 = person::table.count().get_result(conn).map_err(failure)?;
        diesel::insert_into(person::table)
            .values((person::id.eq(1), person::name.eq(format!("again {n}"))))
            .execute(conn)
            .map_err(failure)?;
        Ok(format!("{people} people and one more"))
    })
    .await
}

/// A request's report, as the layer's hooks made it.
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
}

impl App {
    async fn serve(router: Router) -> App {
        driver_log();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (on_oops, on_request) = (Arc::clone(&seen), Arc::clone(&seen));
        let router = router.layer(
            RequestTimelineLayer::new()
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
            address: server::serve(router).await,
            seen,
            client: client(),
        }
    }

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

    /// `REQUESTS` requests to `/{page}/{n}`, four clients at a time: each a
    /// 500 with PostgreSQL's error in its body and a `Server-Timing`
    /// header counting both statements.
    async fn fail_all(self: &Arc<Self>, page: &'static str) {
        let clients: Vec<_> = (0..4)
            .map(|client| {
                let app = Arc::clone(self);
                tokio::spawn(async move {
                    for n in (client..REQUESTS).step_by(4) {
                        let (status, timing, body) = app.get(&format!("/{page}/{n}")).await;
                        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
                        assert!(body.contains(DUPLICATE), "{body}");
                        let timing = timing.unwrap_or_else(|| panic!("no Server-Timing: {n}"));
                        assert!(timing.contains("SQL-main x2"), "request {n}: {timing}");
                    }
                })
            })
            .collect();
        for client in clients {
            client.await.unwrap();
        }
    }
}

/// A pool with every connection open before the first request.
async fn sqlx_pool(schema: &TestSchema) -> PgPool {
    let pool = PgPoolOptions::new()
        .max_connections(CONNECTIONS)
        .min_connections(CONNECTIONS)
        .connect(schema.url())
        .await
        .unwrap();
    let mut connections = Vec::new();
    for _ in 0..CONNECTIONS {
        connections.push(pool.acquire().await.unwrap());
    }
    drop(connections);
    pool
}

/// `(detail, outcome)` of each action.
fn outcomes(actions: &[Action]) -> Vec<(String, Outcome)> {
    actions
        .iter()
        .map(|a| (a.detail().to_owned(), a.outcome().clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlx_each_of_200_failing_requests_has_its_failed_statement_not_reported() {
    let schema = test_schema("capture_sqlx_fail");
    let pool = sqlx_pool(&schema).await;
    let app = Arc::new(
        App::serve(
            Router::new()
                .route("/fail/{n}", get(sqlx_fail))
                .with_state(pool),
        )
        .await,
    );
    app.fail_all("fail").await;
    for n in 0..REQUESTS {
        let seen = app.seen(&format!("/fail/{n}")).await;
        let report = seen.report.expect("an OOPS report");
        // sqlx-postgres returns the server's error in the `Result` only:
        // its query event says nothing of it.
        let [count, insert] = failing(n);
        assert_eq!(
            outcomes(report.actions()),
            [
                (count, Outcome::NotReported),
                (insert, Outcome::NotReported)
            ],
            "request {n}"
        );
        assert_eq!((report.late(), seen.timeline.late()), (0, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sea_orm_each_of_200_failing_requests_has_postgresql_s_error() {
    let schema = test_schema("capture_orm_fail");
    let pool = sqlx_pool(&schema).await;
    let app = Arc::new(
        App::serve(
            Router::new()
                .route("/fail-orm/{n}", get(orm_fail))
                .with_state(pool),
        )
        .await,
    );
    app.fail_all("fail-orm").await;
    for n in 0..REQUESTS {
        let report = app
            .seen(&format!("/fail-orm/{n}"))
            .await
            .report
            .expect("an OOPS report");
        let [count, insert] = failing(n);
        let recorded = outcomes(report.actions());
        assert_eq!(recorded.len(), 2, "request {n}: {recorded:?}");
        assert_eq!(recorded[0], (count, Outcome::Ok));
        assert_eq!(recorded[1].0, insert);
        match &recorded[1].1 {
            Outcome::Error(text) => assert!(text.contains(DUPLICATE), "{text}"),
            other => panic!("request {n}: the INSERT recorded as {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn diesel_each_of_200_failing_requests_has_postgresql_s_error() {
    let schema = test_schema("capture_diesel_fail");
    let app = Arc::new(
        App::serve(
            Router::new()
                .route("/diesel-fail/{n}", get(diesel_fail))
                .with_state(DieselPool::new(&schema)),
        )
        .await,
    );
    app.fail_all("diesel-fail").await;
    for n in 0..REQUESTS {
        let report = app
            .seen(&format!("/diesel-fail/{n}"))
            .await
            .report
            .expect("an OOPS report");
        assert_eq!(
            outcomes(report.actions()),
            [
                (
                    "SELECT COUNT(*) FROM \"person\" -- binds: []".to_owned(),
                    Outcome::Ok
                ),
                (
                    format!(
                        "INSERT INTO \"person\" (\"id\", \"name\") VALUES ($1, $2) -- binds: [1, \"again {n}\"]"
                    ),
                    Outcome::Error(DUPLICATE.to_owned())
                ),
            ],
            "request {n}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_sequential_statements_stay_sequential_and_last_what_sqlx_measured() {
    let schema = test_schema("capture_sqlx_sequential");
    let pool = sqlx_pool(&schema).await;
    let app = App::serve(
        Router::new()
            .route("/page/{n}", get(sqlx_page))
            .with_state(pool),
    )
    .await;
    for n in 0..REQUESTS {
        let (status, _, body) = app.get(&format!("/page/{n}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let timeline = app.seen(&format!("/page/{n}")).await.timeline;
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
}
