//! Issue #9's setup, end to end: an axum app on SQLite through sqlx, with
//! not one annotation on its queries. `TimelineLayer` turns sqlx's own
//! query events into actions on each request's timeline — although sqlx
//! runs SQLite statements on a worker thread of its own.
//!
//! Run with `cargo run --example sqlx`: it serves on a loopback port, asks
//! itself for an N+1 page, and prints that request's summary and waterfall.

use std::sync::mpsc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use timeline_core::integrations::tower::RequestTimelineLayer;
use timeline_core::integrations::tracing::TimelineLayer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing_subscriber::{EnvFilter, prelude::*};

/// The N+1 page: the bugs, then each assignee with a query of its own.
async fn bugs(State(pool): State<SqlitePool>) -> Result<String, String> {
    let bugs: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT id, title, assignee FROM bug ORDER BY id")
            .fetch_all(&pool)
            .await
            .map_err(|e| e.to_string())?;
    let mut page = String::new();
    for (id, title, assignee) in bugs {
        let name: String = sqlx::query_scalar("SELECT name FROM person WHERE id = ?")
            .bind(assignee)
            .fetch_one(&pool)
            .await
            .map_err(|e| e.to_string())?;
        page.push_str(&format!("#{id} {title} ({name})\n"));
    }
    Ok(page)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The setup to copy: the log filters on its own layer, the timeline
    // layer beside it with none (it enables sqlx's DEBUG event for itself).
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_filter(EnvFilter::new("info")))
        .with(TimelineLayer::new())
        .init();

    // One connection: an in-memory database lives as long as its connection.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await?;
    sqlx::raw_sql(
        "CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE bug (id INTEGER PRIMARY KEY, title TEXT NOT NULL, assignee INTEGER NOT NULL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10)
         INSERT INTO person SELECT i, 'person ' || i FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10)
         INSERT INTO bug SELECT i, 'bug ' || i, i FROM n;",
    )
    .execute(&pool)
    .await?;

    let (reports, reported) = mpsc::channel();
    let app = Router::new()
        .route("/bugs", get(bugs))
        .with_state(pool)
        .layer(
            RequestTimelineLayer::new()
                .server_timing(true)
                .on_request(move |request| {
                    let timeline = request.timeline();
                    let summary = timeline.summary();
                    let repeats = summary.repeated_statements().first().map(|r| r.count());
                    let text = format!(
                        "{} {}\n{summary:#}\n{}",
                        request.method(),
                        request.uri(),
                        timeline.waterfall(60)
                    );
                    let _ = reports.send((text, repeats));
                }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    // Ask ourselves for the page, as a browser would.
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(b"GET /bugs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let server_timing = response
        .lines()
        .find(|line| line.to_ascii_lowercase().starts_with("server-timing:"))
        .ok_or("no Server-Timing header")?;
    println!("{server_timing}\n");

    let (report, repeats) = reported.recv_timeout(std::time::Duration::from_secs(10))?;
    println!("{report}");
    // The N+1 group is the point of the example: fail loudly without it.
    if repeats != Some(10) {
        return Err(format!("expected the assignee query 10 times, got {repeats:?}").into());
    }
    Ok(())
}
