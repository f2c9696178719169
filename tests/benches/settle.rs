//! What the settle step costs a request: 21 sqlx statements (SQLite)
//! through an axum app behind `RequestTimelineLayer`, with the
//! `TimelineLayer` installed, with the settle step (the default) and
//! without it (`settle_timeout(Duration::ZERO)`), measured in alternation
//! so that both meet the same state of a shared host:
//!
//! ```sh
//! cargo bench -p timeline-tests --bench settle
//! ```
//!
//! Two pages: `read` (one `fetch_all` and 20 `fetch_one`: sqlx emits a
//! `fetch_one`'s event before it sends the row, so nothing is outstanding
//! when the handler returns) and `write` (20 `fetch_one` and an `UPDATE`,
//! whose event sqlx's worker emits after it sent the result: the request
//! waits for it whenever the handler is faster than the worker).
//!
//! Prints, per page and variant, the time per request (minimum, median,
//! 90th percentile over the rounds), and how many requests ended with
//! fewer than their 21 statements on the timeline.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::routing::get;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use timeline_core::integrations::tower::RequestTimelineLayer;
use timeline_core::integrations::tracing::TimelineLayer;
use tower::ServiceExt;
use tracing_subscriber::prelude::*;

const PEOPLE: i64 = 20;
const ROUNDS: usize = 200;
const REQUESTS_PER_ROUND: u32 = 20;

async fn read(State(pool): State<SqlitePool>) -> String {
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM person ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut names = 0;
    for id in ids {
        let name: String = sqlx::query_scalar("SELECT name FROM person WHERE id = ?")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
        names += name.len();
    }
    names.to_string()
}

async fn write(State(pool): State<SqlitePool>) -> String {
    let mut names = 0;
    for id in 1..=PEOPLE {
        let name: String = sqlx::query_scalar("SELECT name FROM person WHERE id = ?")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
        names += name.len();
    }
    sqlx::query("UPDATE person SET name = name WHERE id = 1")
        .execute(&pool)
        .await
        .unwrap();
    names.to_string()
}

async fn database(path: &PathBuf) -> SqlitePool {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(path)
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
    pool
}

/// The app behind the layer; `short` counts the requests that ended with
/// fewer than their 21 statements on the timeline.
fn app(pool: SqlitePool, settle: bool, short: Arc<AtomicU64>) -> Router {
    let mut layer = RequestTimelineLayer::new().on_request(move |request| {
        if request.timeline().len() < 21 {
            short.fetch_add(1, Ordering::Relaxed);
        }
    });
    if !settle {
        layer = layer.settle_timeout(Duration::ZERO);
    }
    Router::new()
        .route("/read", get(read))
        .route("/write", get(write))
        .with_state(pool)
        .layer(layer)
}

/// Whether the layer's timer thread was started: only a request that
/// still had work outstanding after its first check starts it.
fn timer_thread_runs() -> bool {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks.flatten().any(|task| {
                std::fs::read_to_string(task.path().join("comm"))
                    .is_ok_and(|name| name.trim() == "timeline-settle")
            })
        })
        .unwrap_or(false)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    tracing_subscriber::registry()
        .with(TimelineLayer::new())
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let path = std::env::temp_dir().join(format!(
        "timeline-bench-settle-{}.sqlite",
        std::process::id()
    ));
    let pool = runtime.block_on(database(&path));
    let short = Arc::new(AtomicU64::new(0));
    let apps = [
        ("settle", app(pool.clone(), true, Arc::clone(&short))),
        ("no settle", app(pool.clone(), false, Arc::clone(&short))),
    ];
    for page in ["/read", "/write"] {
        let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
        let mut incomplete = [0u64; 2];
        let ask = |app: &Router| {
            let request = Request::get(page).body(Body::empty()).unwrap();
            let response = runtime.block_on(app.clone().oneshot(request)).unwrap();
            assert!(response.status().is_success());
        };
        for (_, app) in &apps {
            for _ in 0..REQUESTS_PER_ROUND {
                ask(app); // warm up
            }
        }
        for round in 0..ROUNDS {
            // Alternating which goes first, so neither always follows the
            // other.
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for variant in order {
                let before = short.load(Ordering::Relaxed);
                let started = Instant::now();
                for _ in 0..REQUESTS_PER_ROUND {
                    ask(&apps[variant].1);
                }
                times[variant].push(started.elapsed() / REQUESTS_PER_ROUND);
                incomplete[variant] += short.load(Ordering::Relaxed) - before;
            }
        }
        println!("page {page}: {REQUESTS_PER_ROUND} requests × {ROUNDS} rounds per variant");
        for (variant, (name, _)) in apps.iter().enumerate() {
            let sorted = &mut times[variant];
            sorted.sort();
            println!(
                "  {name:>9}: min {:>9.1?}  median {:>9.1?}  p90 {:>9.1?}  requests ending with fewer than 21 actions: {}",
                sorted[0],
                percentile(sorted, 0.5),
                percentile(sorted, 0.9),
                incomplete[variant]
            );
        }
        println!(
            "  the settle timer thread runs (some request waited past its first check): {}",
            timer_thread_runs()
        );
    }
    drop(pool);
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}
