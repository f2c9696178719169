//! The bug tracker served over HTTP by axum, with a timeline per request.
//!
//! ```sh
//! cargo run --example server            # serves http://127.0.0.1:3000 until Ctrl-C
//! curl -i http://127.0.0.1:3000/products/1
//! open http://127.0.0.1:3000/_timeline/        # the recent-requests viewer
//! cargo run --example server -- --self-test   # starts, asks itself, exits
//! ```
//!
//! Every response carries a `Server-Timing` header with the time per
//! category; every request logs its summary line (with the OOPS id when it
//! made one); a failing or slow request writes its OOPS report under
//! `target/oops/`; and `/_timeline/` shows the requests running and the
//! last ones finished, each as a page — to loopback clients only, since
//! timelines hold SQL text.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use timeline_core::integrations::tower::{RequestTimelineLayer, ViewerOptions};
use timeline_examples::{bugs, web};

/// The bug tracker's routes behind the timeline layer.
fn app(database: PathBuf, spool: PathBuf, oops_dir: PathBuf) -> Router {
    let layer = RequestTimelineLayer::new()
        .server_timing(true)
        .soft_time_limit(Duration::from_millis(500))
        .on_request(|request| eprintln!("{}", request.log_line()))
        .on_oops(move |request, report| {
            let path = oops_dir.join(format!("{}.json", report.id()));
            match serde_json::to_vec_pretty(&report).map(|json| std::fs::write(&path, json)) {
                Ok(Ok(())) => eprintln!(
                    "  {:?}: OOPS report in {}",
                    request.oops_reason(),
                    path.display()
                ),
                Ok(Err(e)) => eprintln!("  could not write {}: {e}", path.display()),
                Err(e) => eprintln!("  could not serialise the report: {e}"),
            }
        })
        // Timelines hold SQL text: only clients on this machine may look.
        .viewer(
            "/_timeline",
            ViewerOptions::new(|request| {
                request
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .is_some_and(|peer| peer.0.ip().is_loopback())
            }),
        );
    web::router(database, spool).layer(layer)
}

fn workspace_target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// Sends one real HTTP/1.1 request and returns the response head.
async fn ask(address: SocketAddr, method: &str, path: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let self_test = std::env::args().any(|arg| arg == "--self-test");
    let target = workspace_target();
    let oops_dir = target.join("oops");
    std::fs::create_dir_all(&oops_dir)?;
    let oops_dir = oops_dir.canonicalize()?;
    let database =
        std::env::temp_dir().join(format!("timeline-server-{}.sqlite", std::process::id()));
    bugs::create_database(&database)?;
    let app = app(database.clone(), oops_dir.join("mail-spool"), oops_dir);

    let address = if self_test {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:3000"
    };
    let listener = tokio::net::TcpListener::bind(address).await?;
    let address = listener.local_addr()?;
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    if self_test {
        for (method, path) in [
            ("GET", "/products/1"),
            ("GET", "/products/1/naive"),
            ("POST", "/bugs/7/status/Won't%20Fix"),
        ] {
            let response = ask(address, method, path).await?;
            let head = response.split("\r\n\r\n").next().unwrap_or_default();
            println!("{method} {path}\n{head}\n");
            if !head.to_ascii_lowercase().contains("server-timing: ") {
                return Err(format!("no Server-Timing header for {path}").into());
            }
        }
        let viewer = ask(address, "GET", "/_timeline/").await?;
        if !viewer.starts_with("HTTP/1.1 200") || !viewer.contains(">/products/1/naive</a>") {
            return Err(format!("the viewer does not list the requests:\n{viewer}").into());
        }
        println!("GET /_timeline/ lists the requests above");
        server.abort();
    } else {
        println!("serving on http://{address} — try: curl -i http://{address}/products/1");
        println!("recent requests: http://{address}/_timeline/");
        tokio::select! {
            served = server => served??,
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    let _ = std::fs::remove_file(&database);
    Ok(())
}
