//! Issue #20: a statement that a bridge records — sqlx through the
//! `tracing` layer, diesel through its instrumentation, an HTTP call
//! through reqwest-tracing — names the application's line that issued it:
//! in the failure messages of `testing`, in findings, on the HTML page and
//! in the OpenTelemetry `code.*` attributes. Where no frame of the
//! application can be found (sqlx's SQLite worker thread), none is shown,
//! never a dependency's, unless the application names the line itself
//! with `with_call_site()`.
//!
//! Each loop below is the N+1 a developer would write; the statement's line
//! is taken with `line!()` just above it. On SQLite and on PostgreSQL (the
//! cluster `scripts/test` starts).

use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::routing::get;
use diesel::connection::{Connection, SimpleConnection};
use diesel::prelude::*;
use opentelemetry::trace::TracerProvider as _;
use reqwest_middleware::ClientBuilder;
use reqwest_tracing::{SpanBackendWithUrl, TracingMiddleware};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use timeline_core::integrations::opentelemetry::{RequestSpan, export};
use timeline_core::{Finding, Timeline, WithCallSite, WithTimeline, testing};
use timeline_tests::checks::{panic_message, panic_message_async};
use timeline_tests::otel::{attribute, in_memory_provider};
use timeline_tests::postgres::TestSchema;
use timeline_tests::server::serve;

const PEOPLE: i64 = 3;

/// `file:line:` as a failure message shows a call site in this file.
fn here(line: u32) -> String {
    format!("call_sites.rs:{line}:")
}

/// Fails if a failure message shows a frame of a dependency or of Rust's
/// own: only the application's lines belong there.
fn assert_no_dependency_frame(message: &str) {
    for dependency in [
        "/registry/",
        "/rustc/",
        "std::",
        "core::",
        "tokio::",
        "tracing_subscriber::",
        "tracing_core::",
        "timeline_core::",
        "sqlx_core::",
        "sqlx_sqlite::",
        "sqlx_postgres::",
        "diesel::",
        "reqwest::",
        "reqwest_middleware::",
        "reqwest_tracing::",
        "hyper::",
    ] {
        assert!(!message.contains(dependency), "{dependency} in\n{message}");
    }
}

/// The call sites of the first finding, as `file:line` texts.
fn finding_sites(finding: &Finding) -> Vec<String> {
    finding
        .call_sites()
        .iter()
        .map(|site| format!("{}:{}", site.call_site().file(), site.call_site().line()))
        .collect()
}

async fn sqlite_pool() -> SqlitePool {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::new().in_memory(true))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO person (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

/// A pool on a schema of its own, holding the people; made before the
/// test's timeline starts.
async fn postgres_pool(test: &str) -> (PgPool, TestSchema) {
    let schema = TestSchema::create(test);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(schema.url())
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE person (id BIGINT PRIMARY KEY, name TEXT NOT NULL); \
         INSERT INTO person (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    )
    .execute(&pool)
    .await
    .unwrap();
    (pool, schema)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_sqlite_an_n_plus_one_names_the_line_that_says_where_it_is() {
    timeline_tests::subscriber::install();
    let pool = sqlite_pool().await;
    let mut line = 0;
    let ((), timeline) = testing::run_async(async {
        for id in 1..=PEOPLE {
            let query = sqlx::query_scalar("SELECT name FROM person WHERE id = ?").bind(id);
            line = line!() + 1;
            let _: String = query.fetch_one(&pool).with_call_site().await.unwrap();
        }
    })
    .await;

    let message = panic_message(|| testing::assert_max_repeats(&timeline, 1));
    assert!(message.contains("was issued 3 times"), "{message}");
    assert!(message.contains(&here(line)), "{message}");
    let summary = timeline.summary();
    assert_eq!(
        finding_sites(&summary.findings()[0]),
        [format!("{}:{line}", file!())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_sqlite_without_a_named_line_reports_none_and_no_dependency_frame() {
    timeline_tests::subscriber::install();
    let pool = sqlite_pool().await;
    let ((), timeline) = testing::run_async(async {
        for id in 1..=PEOPLE {
            let query = sqlx::query_scalar("SELECT name FROM person WHERE id = ?").bind(id);
            let _: String = query.fetch_one(&pool).await.unwrap();
        }
    })
    .await;

    // sqlx emits the event on its worker thread: no frame there is ours.
    let actions = timeline.actions();
    assert_eq!(actions.len(), 3);
    assert!(actions.iter().all(|a| a.call_site().is_none()));
    assert!(actions.iter().all(|a| a.backtrace().is_none()));
    let message = panic_message(|| testing::assert_max_repeats(&timeline, 1));
    assert!(message.contains("(call site not reported)"), "{message}");
    assert!(!message.contains("backtrace of"), "{message}");
    assert_no_dependency_frame(&message);
    assert!(timeline.summary().findings()[0].call_sites().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_postgres_an_n_plus_one_names_the_loop_s_line_everywhere() {
    timeline_tests::subscriber::install();
    let (pool, _schema) = postgres_pool("call_sites_sqlx").await;
    let mut line = 0;
    let ((), timeline) = testing::run_async(async {
        for id in 1..=PEOPLE {
            let query = sqlx::query_scalar("SELECT name FROM person WHERE id = $1").bind(id);
            line = line!() + 1;
            let _: String = query.fetch_one(&pool).await.unwrap();
        }
    })
    .await;

    // The failure messages of the tests.
    let message = panic_message(|| testing::assert_max_repeats(&timeline, 1));
    assert!(message.contains("was issued 3 times"), "{message}");
    assert!(message.contains(&here(line)), "{message}");
    assert_no_dependency_frame(&message);
    let message = panic_message(|| testing::assert_max_actions(&timeline, "SQL", 2));
    assert!(message.contains("found 3"), "{message}");
    assert!(message.contains(&here(line)), "{message}");
    assert_no_dependency_frame(&message);

    // The finding, and the summary's breakdown.
    let summary = timeline.summary();
    let sites = finding_sites(&summary.findings()[0]);
    assert_eq!(sites.len(), 1, "{sites:?}");
    assert!(
        sites[0].ends_with(&format!("call_sites.rs:{line}")),
        "{sites:?}"
    );
    let breakdown = format!("{summary:#}");
    assert!(
        breakdown.contains(&format!("call_sites.rs:{line} (3×)")),
        "{breakdown}"
    );
    // The function as the backtrace names it: an inlined async block has
    // no path.
    let site = summary.findings()[0].call_sites()[0].call_site();
    assert!(site.function().is_some_and(|f| !f.is_empty()), "{site:?}");

    // The HTML page.
    let html = timeline.report().to_html();
    assert!(
        html.contains(&format!("call_sites.rs:{line}:")),
        "no call site on the page"
    );

    // The OpenTelemetry attributes of each statement's span.
    let (spans, provider) = in_memory_provider();
    export(&timeline, &provider.tracer("test"), RequestSpan::new("GET"));
    let spans = spans.get_finished_spans().unwrap();
    let statements: Vec<_> = spans.iter().filter(|s| s.name == "SQL-main").collect();
    assert_eq!(statements.len(), 3);
    for span in statements {
        let file = attribute(span, "code.file.path").unwrap().as_str();
        assert!(file.ends_with("call_sites.rs"), "{file}");
        assert_eq!(
            attribute(span, "code.line.number").unwrap().to_string(),
            line.to_string()
        );
        assert_eq!(
            attribute(span, "code.function.name").map(|f| f.as_str()),
            site.function().map(Into::into)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_postgres_a_scaling_failure_names_the_line_that_grew() {
    timeline_tests::subscriber::install();
    let (pool, _schema) = postgres_pool("call_sites_scaling").await;
    let line = AtomicU32::new(0);
    let page = |size: i64| {
        let (pool, line) = (&pool, &line);
        async move {
            for id in 1..=size {
                let sql = "SELECT name FROM person WHERE id = $1";
                let query = sqlx::query_scalar(sql).bind(id % PEOPLE + 1);
                line.store(line!() + 1, Ordering::Relaxed);
                let _: String = query.fetch_one(pool).await.unwrap();
            }
        }
    };
    let scaling = testing::scaling("SQL");
    let check = scaling.check_async(|size| async move { size as i64 }, page);
    let message = panic_message_async(check).await;

    let line = line.into_inner();
    let grown = message
        .lines()
        .find(|l| l.contains("FROM person WHERE id = $1"))
        .unwrap_or_else(|| panic!("{message}"));
    assert!(grown.trim_start().starts_with("2 → 5"), "{grown}");
    assert!(grown.contains(&here(line)), "{grown}");
}

diesel::table! {
    /// The people, as diesel sees them.
    person (id) {
        /// The primary key.
        id -> BigInt,
        /// A name.
        name -> Text,
    }
}

#[test]
fn diesel_sqlite_an_n_plus_one_names_the_loop_s_line() {
    timeline_core::integrations::diesel::install().unwrap();
    let mut conn = diesel::sqlite::SqliteConnection::establish(":memory:").unwrap();
    conn.batch_execute(
        "CREATE TABLE person (id BIGINT PRIMARY KEY, name TEXT NOT NULL); \
         INSERT INTO person (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c');",
    )
    .unwrap();
    let mut line = 0;
    let ((), timeline) = testing::run(|| {
        for id in 1..=PEOPLE {
            let query = person::table.find(id).select(person::name);
            line = line!() + 1;
            let _: String = query.first(&mut conn).unwrap();
        }
    });

    let message = panic_message(|| testing::assert_max_repeats(&timeline, 1));
    assert!(message.contains("was issued 3 times"), "{message}");
    assert!(message.contains(&here(line)), "{message}");
    assert_no_dependency_frame(&message);
    let summary = timeline.summary();
    let sites = finding_sites(&summary.findings()[0]);
    assert!(
        sites == [format!("tests/call_sites.rs:{line}")],
        "{sites:?}"
    );
}

#[test]
fn diesel_postgres_an_n_plus_one_names_the_loop_s_line() {
    timeline_core::integrations::diesel::install().unwrap();
    let schema = TestSchema::create("call_sites_diesel");
    let mut conn = diesel::pg::PgConnection::establish(schema.url()).unwrap();
    conn.batch_execute(
        "CREATE TABLE person (id BIGINT PRIMARY KEY, name TEXT NOT NULL); \
         INSERT INTO person (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c');",
    )
    .unwrap();
    let mut line = 0;
    let ((), timeline) = testing::run(|| {
        for id in 1..=PEOPLE {
            let query = person::table.find(id).select(person::name);
            line = line!() + 1;
            let _: String = query.first(&mut conn).unwrap();
        }
    });

    let message = panic_message(|| testing::assert_max_repeats(&timeline, 1));
    assert!(message.contains("was issued 3 times"), "{message}");
    assert!(message.contains(&here(line)), "{message}");
    assert_no_dependency_frame(&message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_tracing_repeated_calls_name_the_loop_s_line() {
    timeline_tests::subscriber::install();
    let address = serve(Router::new().route("/bugs/{id}", get(|| async { "a bug" }))).await;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(TracingMiddleware::<SpanBackendWithUrl>::new())
        .build();
    let mut line = 0;
    let ((), timeline) = testing::run_async(async {
        for id in 1..=PEOPLE {
            let request = client.get(format!("http://{address}/bugs/{id}"));
            line = line!() + 1;
            request.send().await.unwrap();
        }
    })
    .await;

    let message = panic_message(|| testing::assert_max_repeats(&timeline, 1));
    assert!(message.contains("HTTP-GET"), "{message}");
    assert!(message.contains(&here(line)), "{message}");
    assert_no_dependency_frame(&message);
}

/// In production, backtraces cost: a bridged action has a call site only
/// where the timeline captures them for it, or where the application names
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_backtraces_a_bridged_action_has_a_call_site_only_where_asked() {
    timeline_tests::subscriber::install();
    let (pool, _schema) = postgres_pool("call_sites_production").await;
    let fetch = |id: i64| {
        sqlx::query_scalar::<_, String>("SELECT name FROM person WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
    };
    let page = async {
        fetch(1).await.unwrap();
        fetch(2).with_call_site().await.unwrap();
    };
    let plain = Timeline::new();
    page.with_timeline(plain.clone()).await;
    let known: Vec<bool> = plain
        .actions()
        .iter()
        .map(|a| a.call_site().is_some())
        .collect();
    assert_eq!(known, [false, true], "only the named one");

    let traced = Timeline::builder()
        .capture_backtraces_if(|category, _| category == "SQL-main")
        .build();
    async { fetch(1).await.unwrap() }
        .with_timeline(traced.clone())
        .await;
    let actions = traced.actions();
    let site = actions[0].call_site().expect("from the backtrace");
    assert!(site.file().ends_with("call_sites.rs"), "{site}");
}
