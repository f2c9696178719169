//! A span processor that panics in `on_end` loses that export only: the
//! process lives, the next request's export goes through, and the panic is
//! counted in `SpanExport::panicked`; by hand, `export` hands the panic to
//! its caller without aborting.
//!
//! Before this was contained, the panic unwound out of an action span's end
//! while the request span was still open; that span's `Drop` ended it,
//! calling `on_end` again, and the second panic aborted the process. An
//! abort cannot be caught, so the scenario runs in a child process: this
//! test binary itself, run again with `CHILD` set.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use opentelemetry::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor, Span, SpanData, SpanProcessor,
};
use timeline_core::integrations::opentelemetry::{RequestSpan, SpanExport, export};
use timeline_core::integrations::tower::RequestTimelineLayer;
use timeline_core::{Timeline, current};

/// Set in the child process: run the scenario instead of spawning it.
const CHILD: &str = "TIMELINE_TEST_EXPORT_PANIC_CHILD";
/// The child's last line when every check held.
const CHILD_OK: &str = "child: process alive, next export through, panic counted";
/// What the processor's panic says.
const PANIC_MESSAGE: &str = "span processor panicked on purpose";

/// A user's span processor with a bug: while `broken`, every span it
/// sees ending panics; otherwise they go on to `inner`.
#[derive(Debug)]
struct Panicking {
    broken: Arc<AtomicBool>,
    inner: SimpleSpanProcessor<InMemorySpanExporter>,
}

impl SpanProcessor for Panicking {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if self.broken.load(Ordering::SeqCst) {
            panic!("{PANIC_MESSAGE}");
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
}

/// Each request records one action: its span ends, and panics, while the
/// request span is still open — the case that aborted.
async fn handler() -> &'static str {
    let timeline = current().expect("the layer makes a timeline current");
    timeline
        .start("SQL-main", "SELECT 1")
        .expect("no overlap")
        .finish();
    "ok"
}

async fn serve(export: SpanExport) -> SocketAddr {
    let app = Router::new()
        .route("/", get(handler))
        .layer(RequestTimelineLayer::new().export_spans(export));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

async fn request(client: &reqwest::Client, address: SocketAddr, n: u32) {
    let response = client
        .get(format!("http://{address}/?request={n}"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

/// The scenario, in the child process.
async fn child() {
    let spans = InMemorySpanExporter::default();
    let broken = Arc::new(AtomicBool::new(true));
    let provider = SdkTracerProvider::builder()
        .with_span_processor(Panicking {
            broken: Arc::clone(&broken),
            inner: SimpleSpanProcessor::new(spans.clone()),
        })
        .build();
    let export = SpanExport::new(provider.tracer("timeline"));
    let address = serve(export.clone()).await;
    let client = reqwest::Client::new();

    request(&client, address, 1).await;
    // Responses go before exports: wait for the first one to be handed over
    // (and to panic) before the second request.
    assert!(export.flush(Duration::from_secs(10)));
    assert_eq!(export.panicked(), 1, "the panic is counted");
    assert!(spans.get_finished_spans().unwrap().is_empty());

    // The processor recovers; the export thread is still there.
    broken.store(false, Ordering::SeqCst);
    request(&client, address, 2).await;
    assert!(export.flush(Duration::from_secs(10)));
    let second = spans.get_finished_spans().unwrap();
    assert_eq!(second.len(), 2, "the next export goes through: {second:#?}");
    let request_span = second
        .iter()
        .find(|span| span.name == "GET")
        .expect("the second request's span");
    let action = second
        .iter()
        .find(|span| span.name == "SQL-main")
        .expect("the second request's action span");
    assert_eq!(action.parent_span_id, request_span.span_context.span_id());
    assert_eq!(export.panicked(), 1, "one panic, counted once");
    assert_eq!(export.dropped(), 0);
    println!("{CHILD_OK}");
}

/// Runs the test `name` of this binary again in a child process with
/// `CHILD` set: whether it succeeded, and its output to show.
fn run_child(name: &str) -> (bool, String, String) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stderr = format!("status: {}\nstderr:\n{stderr}", output.status);
    (output.status.success(), stdout, stderr)
}

#[test]
fn a_panicking_span_processor_loses_that_export_only() {
    if std::env::var_os(CHILD).is_some() {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(child());
        return;
    }
    let (success, stdout, stderr) = run_child("a_panicking_span_processor_loses_that_export_only");
    let shown = format!("stdout:\n{stdout}\n{stderr}");
    assert!(success, "the child died: {shown}");
    assert!(stdout.contains(CHILD_OK), "{shown}");
    // The panic did happen, on the export thread.
    assert!(stderr.contains(PANIC_MESSAGE), "{shown}");
    assert!(stderr.contains("timeline-otel-export"), "{shown}");
    // The action span's end panicked, then the request span's, ended after
    // the first panic was caught, not while it unwound.
    assert_eq!(stderr.matches(PANIC_MESSAGE).count(), 2, "{shown}");
}

/// `export` called by hand: the processor's panic reaches the caller, as
/// any callback's does, once the request span is ended.
#[test]
fn a_panic_in_a_direct_export_reaches_its_caller_without_aborting() {
    if std::env::var_os(CHILD).is_some() {
        let spans = InMemorySpanExporter::default();
        let broken = Arc::new(AtomicBool::new(true));
        let provider = SdkTracerProvider::builder()
            .with_span_processor(Panicking {
                broken: Arc::clone(&broken),
                inner: SimpleSpanProcessor::new(spans.clone()),
            })
            .build();
        let tracer = provider.tracer("timeline");
        let timeline = Timeline::new();
        timeline.start("SQL-main", "SELECT 1").unwrap().finish();
        timeline.start("SQL-main", "SELECT 2").unwrap().finish();
        let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
            export(&timeline, &tracer, RequestSpan::new("job"))
        }));
        let message = caught.expect_err("the panic reaches the caller");
        assert_eq!(message.downcast_ref::<String>().unwrap(), PANIC_MESSAGE);
        broken.store(false, Ordering::SeqCst);
        export(&timeline, &tracer, RequestSpan::new("job"));
        assert_eq!(spans.get_finished_spans().unwrap().len(), 3);
        println!("{CHILD_OK}");
        return;
    }
    let (success, stdout, stderr) =
        run_child("a_panic_in_a_direct_export_reaches_its_caller_without_aborting");
    let shown = format!("stdout:\n{stdout}\n{stderr}");
    assert!(success, "the child died: {shown}");
    assert!(stdout.contains(CHILD_OK), "{shown}");
    // The first action's span, then the request span: the second action's
    // span was never built.
    assert_eq!(stderr.matches(PANIC_MESSAGE).count(), 2, "{shown}");
}
