//! The served application: one axum + sqlx service on a SQLite file, with
//! the same routes and handlers in every mode. Only the instrumentation
//! installed around it differs, and it is written the way the README and
//! the integrations' documentation tell a user to write it.

use std::error::Error;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::routing::get;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use timeline_core::integrations::opentelemetry::{SpanExport, TimelineIdGenerator};
use timeline_core::integrations::tower::{RequestTimelineLayer, ViewerOptions};
use timeline_core::integrations::tracing::TimelineLayer;
use tracing_subscriber::{EnvFilter, prelude::*};

/// How many bugs the pages list; the N+1 page issues one statement for the
/// list and one per bug.
pub(crate) const BUGS: usize = 20;
/// Bugs are assigned round-robin to this many people, so the N+1 page
/// repeats statements as real ones do.
const PEOPLE: usize = 10;

/// The instrumentation a server runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `tracing_subscriber`'s fmt layer at INFO, nothing else: the baseline.
    Fmt,
    /// Fmt + the README's "In a web service" setup.
    Readme,
    /// Readme + the viewer + OpenTelemetry export of every request.
    All,
    /// Fmt + `tracing-opentelemetry` seeing every statement.
    Otel,
}

impl Mode {
    pub(crate) const EVERY: [Mode; 4] = [Mode::Fmt, Mode::Readme, Mode::All, Mode::Otel];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Fmt => "fmt",
            Mode::Readme => "readme",
            Mode::All => "all",
            Mode::Otel => "otel",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Mode> {
        Mode::EVERY.into_iter().find(|mode| mode.name() == name)
    }

    /// Whether the mode exports spans to the OTLP sink.
    pub(crate) fn exports(self) -> bool {
        matches!(self, Mode::All | Mode::Otel)
    }

    /// Whether the mode runs the timeline's tower layer (`Server-Timing`
    /// and the per-request log line).
    pub(crate) fn has_timeline(self) -> bool {
        matches!(self, Mode::Readme | Mode::All)
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Mode::Fmt => "`tracing_subscriber` fmt layer at INFO (the baseline)",
            Mode::Readme => {
                "+ the README's setup (`TimelineLayer::new()`, `RequestTimelineLayer` with `Server-Timing` and the log line)"
            }
            Mode::All => "+ the viewer + OpenTelemetry export of every request (OTLP/HTTP)",
            Mode::Otel => {
                "fmt + `tracing-opentelemetry` seeing every statement (tower-http span, OTLP/HTTP)"
            }
        }
    }
}

/// The two pages: the same list of bugs with their assignees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Page {
    /// One joined statement.
    One,
    /// The list, then each assignee with a statement of its own.
    NPlusOne,
}

impl Page {
    pub(crate) const EVERY: [Page; 2] = [Page::One, Page::NPlusOne];

    pub(crate) fn path(self) -> &'static str {
        match self {
            Page::One => "/one",
            Page::NPlusOne => "/n-plus-one",
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Page::One => "one-query",
            Page::NPlusOne => "N+1",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Page> {
        Page::EVERY
            .into_iter()
            .find(|page| page.name() == name || page.path().trim_start_matches('/') == name)
    }

    /// SQL statements the page issues per request.
    pub(crate) fn statements(self) -> usize {
        match self {
            Page::One => 1,
            Page::NPlusOne => 1 + BUGS,
        }
    }
}

/// The body both pages answer with.
pub(crate) fn expected_page() -> String {
    let mut page = String::new();
    for id in 1..=BUGS {
        let person = (id - 1) % PEOPLE + 1;
        let _ = writeln!(page, "#{id} bug {id} (person {person})");
    }
    page
}

type PageResult = Result<String, (StatusCode, String)>;

fn failed(error: sqlx::Error) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
}

fn render(rows: impl IntoIterator<Item = (i64, String, String)>) -> String {
    let mut page = String::new();
    for (id, title, name) in rows {
        let _ = writeln!(page, "#{id} {title} ({name})");
    }
    page
}

async fn one_query(State(pool): State<SqlitePool>) -> PageResult {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT bug.id, bug.title, person.name FROM bug \
         JOIN person ON person.id = bug.assignee ORDER BY bug.id",
    )
    .fetch_all(&pool)
    .await
    .map_err(failed)?;
    Ok(render(rows))
}

async fn n_plus_one(State(pool): State<SqlitePool>) -> PageResult {
    let bugs: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT id, title, assignee FROM bug ORDER BY id")
            .fetch_all(&pool)
            .await
            .map_err(failed)?;
    let mut rows = Vec::with_capacity(bugs.len());
    for (id, title, assignee) in bugs {
        let name: String = sqlx::query_scalar("SELECT name FROM person WHERE id = ?")
            .bind(assignee)
            .fetch_one(&pool)
            .await
            .map_err(failed)?;
        rows.push((id, title, name));
    }
    Ok(render(rows))
}

/// The application's own routes, identical in every mode.
fn pages(pool: SqlitePool) -> Router {
    Router::new()
        .route(Page::One.path(), get(one_query))
        .route(Page::NPlusOne.path(), get(n_plus_one))
        .with_state(pool)
}

/// A SQLite file in `dir`, a pool of four, and the bugs and people the
/// pages list. Every connection is opened before the first request.
async fn open_database(dir: PathBuf) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::new()
        .filename(dir.join("bench.sqlite"))
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .min_connections(4)
        .connect_with(options)
        .await?;
    sqlx::raw_sql(&format!(
        "CREATE TABLE IF NOT EXISTS person (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS bug (id INTEGER PRIMARY KEY, title TEXT NOT NULL,
                                         assignee INTEGER NOT NULL REFERENCES person(id));
         DELETE FROM bug; DELETE FROM person;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {PEOPLE})
         INSERT INTO person SELECT i, 'person ' || i FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {BUGS})
         INSERT INTO bug SELECT i, 'bug ' || i, (i - 1) % {PEOPLE} + 1 FROM n;"
    ))
    .execute(&pool)
    .await?;
    Ok(pool)
}

/// An SDK tracer provider as the README sets one up, exporting over
/// OTLP/HTTP (binary protobuf) with the SDK's batch processor to `endpoint`.
fn otlp_provider(endpoint: &str, timeline_ids: bool) -> Result<SdkTracerProvider, Box<dyn Error>> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .build()?;
    let builder = SdkTracerProvider::builder().with_batch_exporter(exporter);
    Ok(if timeline_ids {
        builder
            .with_id_generator(TimelineIdGenerator::default())
            .build()
    } else {
        builder.build()
    })
}

/// The log layer every mode has, exactly as the README writes it.
macro_rules! fmt_layer {
    () => {
        tracing_subscriber::fmt::layer().with_filter(EnvFilter::new("info"))
    };
}

/// The README's tower layer: `Server-Timing` and its log line.
fn readme_layer() -> RequestTimelineLayer {
    RequestTimelineLayer::new()
        .server_timing(true)
        .on_request(|request| {
            println!("{} {}", request.uri(), request.timeline().summary_line());
        })
}

/// Hands every finished span to the exporter and waits for it; returns how
/// many requests `SpanExport` dropped so far (the SDK's own drops show as
/// fewer spans at the sink).
type Flush = Arc<dyn Fn() -> Result<u64, String> + Send + Sync>;

/// What a mode installs: the global subscriber now, and a function that
/// wraps the application's router.
struct Instrumentation {
    wrap: Box<dyn FnOnce(Router) -> Router>,
    flush: Flush,
}

impl Instrumentation {
    fn install(mode: Mode, sink: Option<&str>) -> Result<Instrumentation, Box<dyn Error>> {
        let endpoint = || sink.ok_or("this mode exports spans: pass --sink URL");
        let nothing_to_flush: Flush = Arc::new(|| Ok(0));
        Ok(match mode {
            Mode::Fmt => {
                tracing_subscriber::registry().with(fmt_layer!()).init();
                Instrumentation {
                    wrap: Box::new(|router| router),
                    flush: nothing_to_flush,
                }
            }
            Mode::Readme => {
                tracing_subscriber::registry()
                    .with(fmt_layer!())
                    .with(TimelineLayer::new())
                    .init();
                Instrumentation {
                    wrap: Box::new(|router| router.layer(readme_layer())),
                    flush: nothing_to_flush,
                }
            }
            Mode::All => {
                tracing_subscriber::registry()
                    .with(fmt_layer!())
                    .with(TimelineLayer::new())
                    .init();
                let provider = otlp_provider(endpoint()?, true)?;
                let export = SpanExport::new(provider.tracer("timeline"));
                // The README's viewer: clients on this machine may look.
                let options = ViewerOptions::new(|request| {
                    request
                        .extensions
                        .get::<ConnectInfo<SocketAddr>>()
                        .is_some_and(|peer| peer.0.ip().is_loopback())
                });
                let layer = readme_layer()
                    .export_spans(export.clone())
                    .viewer("/_timeline", options);
                Instrumentation {
                    wrap: Box::new(move |router| router.layer(layer)),
                    flush: Arc::new(move || {
                        if !export.flush(Duration::from_secs(30)) {
                            return Err("SpanExport::flush timed out".into());
                        }
                        provider.force_flush().map_err(|e| e.to_string())?;
                        Ok(export.dropped())
                    }),
                }
            }
            Mode::Otel => {
                let provider = otlp_provider(endpoint()?, false)?;
                // The usual setup: tower-http's request span (DEBUG) and
                // sqlx's statement events (DEBUG) go to OpenTelemetry, the
                // log stays at INFO.
                let otel = tracing_opentelemetry::layer()
                    .with_tracer(provider.tracer("served-bench"))
                    .with_filter(EnvFilter::new("info,tower_http=debug,sqlx::query=debug"));
                tracing_subscriber::registry()
                    .with(fmt_layer!())
                    .with(otel)
                    .init();
                Instrumentation {
                    wrap: Box::new(|router| {
                        router.layer(tower_http::trace::TraceLayer::new_for_http())
                    }),
                    flush: Arc::new(move || {
                        provider.force_flush().map_err(|e| e.to_string())?;
                        Ok(0)
                    }),
                }
            }
        })
    }
}

/// The benchmark's own routes, outside every instrumentation layer.
fn bench_routes(flush: Flush) -> Router {
    Router::new().route(
        "/_bench/flush",
        get(move || async move {
            match tokio::task::spawn_blocking(move || flush()).await {
                Ok(Ok(dropped)) => (StatusCode::OK, format!("dropped {dropped}\n")),
                Ok(Err(error)) => (StatusCode::INTERNAL_SERVER_ERROR, error + "\n"),
                Err(panic) => (StatusCode::INTERNAL_SERVER_ERROR, panic.to_string()),
            }
        }),
    )
}

/// What `served-bench server` is told.
pub(crate) struct ServerArgs {
    pub(crate) mode: Mode,
    pub(crate) listen: SocketAddr,
    pub(crate) dir: PathBuf,
    pub(crate) sink: Option<String>,
}

/// Runs the service until the process is killed.
pub(crate) fn serve(args: ServerArgs) -> Result<(), Box<dyn Error>> {
    // Installed before the runtime exists: the OTLP exporter's blocking HTTP
    // client must not be built inside it.
    let instrumentation = Instrumentation::install(args.mode, args.sink.as_deref())?;
    // A multi-threaded runtime, as `#[tokio::main]` builds it: one worker
    // per CPU the process may run on.
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let pool = open_database(args.dir).await?;
        // The instrumented application behind the benchmark's routes as a
        // whole (fallback included: the viewer answers there), not merged.
        let app = bench_routes(instrumentation.flush)
            .fallback_service((instrumentation.wrap)(pages(pool)));
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        println!(
            "served-bench {} listening on {}",
            args.mode.name(),
            listener.local_addr()?
        );
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await?;
        Ok(())
    })
}
