//! The viewer in a real browser: headless Chromium (Debian's `chromium`)
//! loads the index and request pages from a real server on loopback; the
//! tests check the DOM it rendered — rows, waterfall bars, hostile details
//! shown as text and never run — and save screenshots under
//! `target/browser/`.
//!
//! Without a browser these tests fail, naming the script that installs one
//! (`scripts/test`); they never pass silently.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use timeline_tests::process::wait_or_kill;
use timeline_tests::viewer_app::{self, HANG_DETAIL, serve};

/// The browser: `TIMELINE_CHROMIUM`, else `chromium` or `chromium-browser`
/// on the `PATH`.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("TIMELINE_CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "headless Chromium is needed for the browser tests and was not found. \
         Run `scripts/test` (it installs Debian's `chromium` with apt-get when missing, \
         then runs every test), or `apt-get install -y chromium`, or point \
         TIMELINE_CHROMIUM at a Chromium binary."
    );
}

fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs headless Chromium with `args` then `url`, in a fresh profile, and
/// returns what it printed; fails after a minute.
fn run_chromium(args: &[&str], url: &str) -> String {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let profile = std::env::temp_dir().join(format!(
        "timeline-chromium-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start Chromium ({e}); run `scripts/test`"));
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
        out
    });
    match wait_or_kill(
        &mut child,
        Duration::from_secs(60),
        Duration::from_millis(50),
    ) {
        Some(status) => assert!(status.success(), "Chromium failed: {status}"),
        None => panic!("Chromium did not finish within a minute on {url}"),
    }
    let _ = std::fs::remove_dir_all(&profile);
    reader.join().unwrap()
}

/// The DOM after Chromium loaded and rendered `url`.
async fn dom(url: String) -> String {
    tokio::task::spawn_blocking(move || run_chromium(&["--dump-dom"], &url))
        .await
        .unwrap()
}

/// Saves a screenshot of `url` as `name` under `target/browser/`.
async fn screenshot(url: String, name: &str, height: u32) -> PathBuf {
    let path = output_dir().join(name);
    let _ = std::fs::remove_file(&path);
    let arg = format!("--screenshot={}", path.display());
    let size = format!("--window-size=1200,{height}");
    tokio::task::spawn_blocking(move || run_chromium(&[&arg, &size], &url))
        .await
        .unwrap();
    let png = std::fs::read(&path).expect("Chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG file");
    assert!(png.len() > 5_000, "a screenshot with something on it");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_shows_finished_and_running_requests() {
    chromium(); // fails first, with how to get a browser, when there is none
    let server = serve("browser-index", viewer_app::loopback_only()).await;
    server.ask("/products/1", &[]).await;
    server.ask("/products/2/naive", &[]).await;
    server.ask("/hostile/index", &[]).await;
    assert!(!server.responds("/panics").await);
    let hanging = server.start_hanging();
    server.kept(4).await;
    server.running(1).await;

    let base = format!("http://{}/_timeline/", server.address);
    let dom = dom(base.clone()).await;
    assert!(
        dom.contains("<title>Recent requests — timeline</title>"),
        "{dom}"
    );
    assert_eq!(dom.matches("<tr class=\"finished").count(), 4, "{dom}");
    assert_eq!(dom.matches("<tr class=\"running\">").count(), 1, "{dom}");
    assert!(dom.contains(&HANG_DETAIL.replace('>', "&gt;")));
    assert!(dom.contains("N+1 ×"));
    assert!(dom.contains(">OOPS-"), "the panic's OOPS id is flagged");
    screenshot(base, "viewer-index.png", 520).await;
    hanging.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_page_draws_its_waterfall() {
    chromium(); // fails first, with how to get a browser, when there is none
    let server = serve("browser-page", viewer_app::loopback_only()).await;
    server.ask("/products/3/naive", &[]).await;
    server.kept(1).await;
    let url = format!("http://{}/_timeline/1", server.address);
    let dom = dom(url.clone()).await;
    assert!(dom.contains("GET /products/3/naive → 200"), "{dom}");
    let rows = dom.matches("<tr class=\"action\"").count();
    assert!(rows > 3, "{rows} rows");
    assert_eq!(
        dom.matches("<div class=\"bar").count(),
        rows,
        "a bar per row"
    );
    assert_eq!(
        dom.matches("<a href=\"#a").count(),
        rows,
        "a bar per action on the lanes"
    );
    assert!(dom.contains("<section id=\"n-plus-one\">"));
    assert!(dom.contains("<tr class=\"repeated\">"));
    screenshot(url, "viewer-request.png", 900).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_details_show_as_text_and_never_run() {
    chromium(); // fails first, with how to get a browser, when there is none
    let server = serve("browser-hostile", viewer_app::loopback_only()).await;
    server.ask("/hostile/page", &[]).await;
    server.kept(1).await;
    let url = format!("http://{}/_timeline/1", server.address);
    let dom = dom(url.clone()).await;
    // Nothing ran: the title is the page's own, no element was injected.
    assert!(
        dom.contains("<title>GET /hostile/page — timeline</title>"),
        "{dom}"
    );
    assert!(!dom.contains("PWNED</title>"));
    assert!(!dom.contains("<h1 id=\"injected\""));
    assert!(!dom.contains("<img"));
    assert!(!dom.contains("<script"));
    // Everything shows, as text.
    assert!(dom.contains("&lt;script&gt;document.title = 'PWNED'&lt;/script&gt;"));
    assert!(dom.contains("\"&gt;&lt;img src=x onerror=\"document.title='PWNED'\"&gt;"));
    assert!(dom.contains("&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;h1 id=\"injected\"&gt;"));
    assert!(dom.contains("SELECT 1 -- [U+202E]gnp.exe"));
    assert!(!dom.contains('\u{202E}'));
    assert!(
        dom.contains(&"x".repeat(64 * 1024)),
        "the 64 KiB detail, whole"
    );
    assert_eq!(dom.matches("<tr class=\"action\"").count(), 5);
    screenshot(url, "viewer-hostile.png", 700).await;
}
