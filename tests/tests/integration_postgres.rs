//! sqlx (postgres) through the `tracing` bridge and diesel (pg) through its
//! `Instrumentation`, against a real PostgreSQL server: the cluster that
//! `scripts/test` starts, each test in a schema of its own. The checks
//! are those of `integration_sqlx.rs` and `integration_diesel.rs` on SQLite.
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
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sqlx::postgres::{PgPool, PgPoolOptions};
use timeline_core::integrations::diesel::TimelineInstrumentation;
use timeline_core::integrations::tower::RequestTimelineLayer;
use timeline_core::integrations::tracing::TimelineLayer;
use timeline_core::{Action, Outcome, Timeline};
use timeline_tests::postgres::TestSchema;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

const PEOPLE: i64 = 20;
const CONNECTIONS: u32 = 4;

/// The tables both drivers use: 20 people, each assigned one bug.
const TABLES: &str = "\
    CREATE TABLE person (id BIGINT PRIMARY KEY, name TEXT NOT NULL, \
        age INTEGER NOT NULL DEFAULT 0 CHECK (age >= 0)); \
    CREATE TABLE bug (id BIGINT PRIMARY KEY, title TEXT NOT NULL, assignee BIGINT NOT NULL); \
    INSERT INTO person (id, name) SELECT n, 'person ' || n FROM generate_series(1, 20) n; \
    INSERT INTO bug (id, title, assignee) SELECT n, 'bug ' || n, n FROM generate_series(1, 20) n;";

diesel::table! {
    /// The people of the test's schema (its `age` column is left out).
    person (id) {
        /// The primary key.
        id -> BigInt,
        /// A name, `person N` unless a test changed it.
        name -> Text,
    }
}

/// A test's own schema with [`TABLES`] in it, made while no timeline is
/// current.
fn test_schema(test: &str) -> TestSchema {
    let schema = TestSchema::create(test);
    let mut conn = PgConnection::establish(schema.url()).unwrap();
    conn.batch_execute(TABLES).unwrap();
    schema
}

fn details(actions: &[Action]) -> Vec<String> {
    actions.iter().map(|a| a.detail().to_owned()).collect()
}

/// The global subscriber with the `TimelineLayer`, as the module
/// documentation tells users to install it, once for the whole binary:
/// sqlx's connection tasks only see the global subscriber.
fn install_subscriber() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_test_writer()
                    .with_filter(EnvFilter::new("warn")),
            )
            .with(TimelineLayer::new())
            .init();
    });
}

/// A finished request as the tower layer's hook saw it.
#[derive(Clone, Debug)]
struct Seen {
    uri: String,
    timeline: Timeline,
}

/// A real server on loopback behind `RequestTimelineLayer`, and a client.
struct App {
    address: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    client: Client<HttpConnector, Body>,
}

impl App {
    async fn serve(app: Router) -> App {
        install_subscriber();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hook = Arc::clone(&seen);
        let app = app.layer(RequestTimelineLayer::new().server_timing(true).on_request(
            move |request| {
                hook.lock().unwrap().push(Seen {
                    uri: request.uri().to_string(),
                    timeline: request.timeline().clone(),
                })
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        App {
            address,
            seen,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Status, `Server-Timing` header and body.
    async fn get(&self, path: &str) -> (StatusCode, Option<String>, String) {
        let request = Request::get(format!("http://{}{path}", self.address))
            .body(Body::empty())
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        let status = response.status();
        let timing = response
            .headers()
            .get("server-timing")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, timing, String::from_utf8(body.to_vec()).unwrap())
    }

    /// The timeline of the request for `uri`, once the hook has seen it.
    async fn timeline(&self, uri: &str) -> Timeline {
        for _ in 0..500 {
            if let Some(seen) = self.seen.lock().unwrap().iter().find(|s| s.uri == uri) {
                return seen.timeline.clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no request {uri} reported");
    }
}

// sqlx (postgres) through the `tracing` bridge.

/// A pool with every connection open before the first request: opening one
/// runs statements of its own, which would land on the request that opened
/// it.
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

/// One bug and its assignee, with the id in the statement text so that
/// each request's statements are its own.
async fn sqlx_bug(State(pool): State<PgPool>, Path(id): Path<i64>) -> String {
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
async fn sqlx_naive(State(pool): State<PgPool>) -> String {
    let bugs: Vec<(i64, i64)> = sqlx::query_as("SELECT id, assignee FROM bug ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut page = String::new();
    for (id, assignee) in bugs {
        let name: String = sqlx::query_scalar("SELECT name FROM person WHERE id = $1")
            .bind(assignee)
            .fetch_one(&pool)
            .await
            .unwrap();
        page.push_str(&format!("{id} {name}\n"));
    }
    page
}

/// Statements of 50 ms each, on every connection of the pool at once.
async fn sqlx_together(State(pool): State<PgPool>) -> String {
    let queries = (1..=i64::from(CONNECTIONS)).map(|n| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(&format!("SELECT {n}::BIGINT FROM pg_sleep(0.05)"))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    });
    let values = futures_util::future::join_all(queries).await;
    format!("{values:?}")
}

async fn sqlx_app(test: &str) -> (App, TestSchema) {
    let schema = test_schema(test);
    let pool = sqlx_pool(&schema).await;
    let router = Router::new()
        .route("/bugs/{id}", get(sqlx_bug))
        .route("/naive", get(sqlx_naive))
        .route("/together", get(sqlx_together))
        .with_state(pool);
    (App::serve(router).await, schema)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_every_statement_of_a_request_is_on_its_timeline_with_its_text() {
    let (app, _schema) = sqlx_app("sqlx_plain").await;
    let (status, timing, body) = app.get("/bugs/3").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "bug 3: person 3"));
    let timeline = app.timeline("/bugs/3").await;
    let actions = timeline.actions();
    assert_eq!(
        details(&actions),
        [
            "SELECT title FROM bug WHERE id = 3",
            "SELECT name FROM person WHERE id = (SELECT assignee FROM bug WHERE id = 3)"
        ]
    );
    assert!(actions.iter().all(|a| a.category() == "SQL-main"));
    assert!(actions.iter().all(|a| a.duration().is_some()));
    // Strictly sequential statements.
    assert!(!actions.iter().any(Action::is_concurrent));
    assert!(timeline.violations().is_empty());
    let timing = timing.expect("a Server-Timing header");
    assert!(timing.contains("SQL-main x2"), "{timing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_an_n_plus_one_page_shows_as_a_repeated_statement_and_stays_sequential() {
    let (app, _schema) = sqlx_app("sqlx_naive").await;
    let (status, _, body) = app.get("/naive").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.lines().count(), PEOPLE as usize);
    let timeline = app.timeline("/naive").await;
    let actions = timeline.actions();
    assert_eq!(
        actions.len(),
        1 + PEOPLE as usize,
        "{:#?}",
        details(&actions)
    );
    assert!(
        !actions.iter().any(Action::is_concurrent),
        "{}",
        timeline.waterfall(60)
    );
    assert!(timeline.violations().is_empty());
    let summary = timeline.summary();
    let repeated = summary.repeated_statements();
    assert_eq!(repeated.len(), 1, "{summary:#}");
    assert_eq!(repeated[0].count(), PEOPLE as u64);
    assert_eq!(
        repeated[0].statement(),
        "SELECT name FROM person WHERE id = $1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlx_concurrent_requests_each_record_exactly_their_own_statements() {
    let (app, _schema) = sqlx_app("sqlx_concurrent").await;
    let app = Arc::new(app);
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
            details(&timeline.actions()),
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
async fn sqlx_statements_polled_together_are_all_recorded_some_as_concurrent() {
    let (app, _schema) = sqlx_app("sqlx_together").await;
    let (status, _, body) = app.get("/together").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "[1, 2, 3, 4]"));
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

// diesel (pg) through its `Instrumentation`.

/// A connection to a test's own schema, recording onto the current
/// timeline. The connection is dropped before its schema.
struct Diesel {
    conn: PgConnection,
    _schema: TestSchema,
}

fn diesel(test: &str) -> Diesel {
    let schema = test_schema(test);
    let mut conn = PgConnection::establish(schema.url()).unwrap();
    conn.set_instrumentation(TimelineInstrumentation::new());
    Diesel {
        conn,
        _schema: schema,
    }
}

#[test]
fn diesel_an_n_plus_one_loop_is_one_repeated_statement_and_stays_sequential() {
    let mut db = diesel("diesel_naive");
    let timeline = Timeline::new();
    let names = timeline.scope(|| {
        let ids: Vec<i64> = person::table
            .select(person::id)
            .order(person::id)
            .load(&mut db.conn)
            .unwrap();
        ids.into_iter()
            .map(|id| {
                person::table
                    .find(id)
                    .select(person::name)
                    .first::<String>(&mut db.conn)
                    .unwrap()
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(names.len(), PEOPLE as usize);

    let actions = timeline.actions();
    assert_eq!(actions.len(), 1 + PEOPLE as usize);
    assert!(actions.iter().all(|a| a.category() == "SQL-main"));
    assert!(actions.iter().all(|a| a.outcome() == &Outcome::Ok));
    assert!(actions.iter().all(|a| a.duration().is_some()));
    assert_eq!(
        actions[0].detail(),
        "SELECT \"person\".\"id\" FROM \"person\" ORDER BY \"person\".\"id\" -- binds: []"
    );
    assert_eq!(
        actions[1].detail(),
        "SELECT \"person\".\"name\" FROM \"person\" WHERE (\"person\".\"id\" = $1) LIMIT $2 -- binds: [1, 1]"
    );
    assert!(actions[20].detail().ends_with("-- binds: [20, 1]"));
    assert!(!actions.iter().any(Action::is_concurrent));
    assert!(timeline.violations().is_empty());

    let summary = timeline.summary();
    let repeated = summary.repeated_statements();
    assert_eq!(repeated.len(), 1, "{summary:#}");
    assert_eq!(repeated[0].count(), PEOPLE as u64);
    assert_eq!(
        repeated[0].statement(),
        "SELECT person.name FROM person WHERE (person.id = $1) LIMIT $2"
    );
}

#[test]
fn diesel_a_transaction_nests_its_statements() {
    let mut db = diesel("diesel_transaction");
    let timeline = Timeline::new();
    timeline
        .scope(|| {
            db.conn.transaction(|conn| {
                diesel::update(person::table.find(1))
                    .set(person::name.eq("Ada"))
                    .execute(conn)?;
                diesel::delete(person::table.find(2)).execute(conn)
            })
        })
        .unwrap();

    let tuples: Vec<(String, String)> = timeline
        .log_tuples()
        .into_iter()
        .map(|t| (t.category, t.detail))
        .collect();
    let expected = [
        ("SQL-main-start", "transaction"),
        ("SQL-main", "BEGIN"),
        (
            "SQL-main",
            "UPDATE \"person\" SET \"name\" = $1 WHERE (\"person\".\"id\" = $2) -- binds: [\"Ada\", 1]",
        ),
        (
            "SQL-main",
            "DELETE FROM \"person\" WHERE (\"person\".\"id\" = $1) -- binds: [2]",
        ),
        ("SQL-main", "COMMIT"),
        ("SQL-main-stop", "transaction"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(c, d)| (c.to_string(), d.to_string()))
        .collect();
    assert_eq!(tuples, expected);

    let actions = timeline.actions();
    let transaction = &actions[0];
    assert!(transaction.is_nested());
    assert_eq!(transaction.outcome(), &Outcome::Ok);
    let commit = actions.last().unwrap();
    let transaction_end = transaction.start() + transaction.duration().unwrap();
    assert!(commit.start() + commit.duration().unwrap() <= transaction_end);
    assert!(timeline.violations().is_empty());
}

#[test]
fn diesel_a_rolled_back_savepoint_nests_inside_its_transaction() {
    let mut db = diesel("diesel_savepoint");
    let timeline = Timeline::new();
    let count = timeline
        .scope(|| {
            db.conn.transaction(|conn| {
                let inner = conn.transaction(|conn| {
                    diesel::delete(person::table).execute(conn)?;
                    Err::<(), _>(diesel::result::Error::RollbackTransaction)
                });
                assert!(inner.is_err());
                person::table.count().get_result::<i64>(conn)
            })
        })
        .unwrap();
    assert_eq!(count, PEOPLE);

    let recorded: Vec<(String, String)> = timeline
        .log_tuples()
        .into_iter()
        .map(|t| (t.category, t.detail))
        .collect();
    let recorded: Vec<(&str, &str)> = recorded
        .iter()
        .map(|(c, d)| (c.as_str(), d.as_str()))
        .collect();
    assert_eq!(
        recorded,
        [
            ("SQL-main-start", "transaction"),
            ("SQL-main", "BEGIN"),
            ("SQL-main-start", "savepoint 1"),
            ("SQL-main", "SAVEPOINT diesel_savepoint_1"),
            ("SQL-main", "DELETE FROM \"person\" -- binds: []"),
            ("SQL-main", "ROLLBACK TO SAVEPOINT diesel_savepoint_1"),
            ("SQL-main-stop", "savepoint 1"),
            ("SQL-main", "SELECT COUNT(*) FROM \"person\" -- binds: []"),
            ("SQL-main", "COMMIT"),
            ("SQL-main-stop", "transaction"),
        ]
    );
    let actions = timeline.actions();
    let savepoint = actions
        .iter()
        .find(|a| a.detail() == "savepoint 1")
        .unwrap();
    assert!(savepoint.is_nested());
    assert_eq!(savepoint.outcome(), &Outcome::Error("rolled back".into()));
    assert_eq!(actions[0].outcome(), &Outcome::Ok);
    assert!(timeline.violations().is_empty());
}

#[test]
fn diesel_a_failing_statement_records_postgresql_s_error() {
    let mut db = diesel("diesel_failing");
    let timeline = Timeline::new();
    let (duplicate, missing) = timeline.scope(|| {
        let duplicate = diesel::insert_into(person::table)
            .values((person::id.eq(1), person::name.eq("again")))
            .execute(&mut db.conn)
            .unwrap_err();
        let missing = db
            .conn
            .batch_execute("SELECT no_such_column FROM person")
            .unwrap_err();
        (duplicate, missing)
    });

    let duplicate = duplicate.to_string();
    let missing = missing.to_string();
    assert_eq!(
        duplicate,
        "duplicate key value violates unique constraint \"person_pkey\""
    );
    assert_eq!(missing, "column \"no_such_column\" does not exist");
    let actions = timeline.actions();
    let recorded: Vec<(&str, &Outcome)> =
        actions.iter().map(|a| (a.detail(), a.outcome())).collect();
    assert_eq!(
        recorded,
        [
            (
                "INSERT INTO \"person\" (\"id\", \"name\") VALUES ($1, $2) -- binds: [1, \"again\"]",
                &Outcome::Error(duplicate)
            ),
            (
                "SELECT no_such_column FROM person",
                &Outcome::Error(missing)
            ),
        ]
    );
    assert!(actions.iter().all(|a| a.duration().is_some()));
}

#[test]
fn diesel_with_backtraces_a_statement_s_call_site_is_the_application_s_line() {
    let mut db = diesel("diesel_call_site");
    let traced = Timeline::builder().capture_backtraces(true).build();
    let load = |conn: &mut PgConnection| person::table.select(person::id).load::<i64>(conn);
    let line = line!() - 1;
    traced.scope(|| load(&mut db.conn).unwrap());
    let actions = traced.actions();
    let call_site = actions[0].call_site().expect("the first application frame");
    assert!(
        call_site.file().ends_with("integration_postgres.rs"),
        "{call_site}"
    );
    assert_eq!(call_site.line(), line);
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

    /// Runs `f` with a connection, on a blocking thread, as services run
    /// diesel; the request's timeline goes along with `with_current`.
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

async fn diesel_bug(State(pool): State<DieselPool>, Path(id): Path<i64>) -> String {
    pool.run(move |conn| {
        let assignee: i64 = diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
            "SELECT assignee FROM bug WHERE id = {id}"
        ))
        .get_result(conn)
        .unwrap();
        let name: String = person::table
            .find(assignee)
            .select(person::name)
            .first(conn)
            .unwrap();
        format!("bug {id}: {name}")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn diesel_concurrent_requests_each_record_exactly_their_own_statements() {
    let schema = test_schema("diesel_concurrent");
    let router = Router::new()
        .route("/bugs/{id}", get(diesel_bug))
        .with_state(DieselPool::new(&schema));
    let app = Arc::new(App::serve(router).await);
    let requests: Vec<_> = (1..=PEOPLE)
        .map(|id| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.get(&format!("/bugs/{id}")).await })
        })
        .collect();
    for (id, request) in (1..=PEOPLE).zip(requests) {
        let (status, timing, body) = request.await.unwrap();
        assert_eq!(
            (status, body),
            (StatusCode::OK, format!("bug {id}: person {id}"))
        );
        let timing = timing.expect("a Server-Timing header");
        assert!(timing.contains("SQL-main x2"), "{timing}");
    }
    for id in 1..=PEOPLE {
        let timeline = app.timeline(&format!("/bugs/{id}")).await;
        let actions = timeline.actions();
        assert_eq!(
            details(&actions),
            [
                format!("SELECT assignee FROM bug WHERE id = {id} -- binds: []"),
                format!(
                    "SELECT \"person\".\"name\" FROM \"person\" WHERE (\"person\".\"id\" = $1) LIMIT $2 -- binds: [{id}, 1]"
                ),
            ],
            "request {id}"
        );
        assert!(actions.iter().all(|a| a.outcome() == &Outcome::Ok));
        assert!(timeline.violations().is_empty());
    }
}
