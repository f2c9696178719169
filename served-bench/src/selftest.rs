//! `served-bench self-test`: starts a server in every mode and checks that
//! it answers both pages with the same, right body, that each mode's
//! instrumentation did its work (the `Server-Timing` header, the log line,
//! the viewer, the spans and statement events at the OTLP sink), and that
//! the load generator and `/proc` readings work against it. What the
//! benchmark measures cannot drift from what it claims to measure without
//! this failing.

use std::error::Error;
use std::time::{Duration, Instant};

use crate::app::{Mode, Page, expected_page};
use crate::load::{self, LoadConfig};
use crate::server::{ServerProcess, TempDir};
use crate::sink::{Received, Sink};

const TIMEOUT: Duration = Duration::from_secs(30);

fn ensure(condition: bool, message: impl FnOnce() -> String) -> Result<(), Box<dyn Error>> {
    if condition {
        Ok(())
    } else {
        Err(message().into())
    }
}

/// What a mode exports for one request of `page`: spans and span events.
fn exported_per_request(mode: Mode, page: Page) -> (u64, u64) {
    let statements = page.statements() as u64;
    match mode {
        // The request span and one span per statement.
        Mode::All => (1 + statements, 0),
        // tower-http's request span; its events: "started processing
        // request", sqlx's event per statement, "finished processing
        // request".
        Mode::Otel => (1, 2 + statements),
        Mode::Fmt | Mode::Readme => (0, 0),
    }
}

/// Flushes the server's export until the sink holds `expected` more than
/// `before`; a request's export is queued just after its response, so the
/// last one may still be on its way when the first flush arrives.
fn flush_until(
    server: &ServerProcess,
    sink: &Sink,
    before: Received,
    expected: (u64, u64),
) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    loop {
        let flushed = load::get(server.addr(), "/_bench/flush", TIMEOUT)?;
        ensure(
            flushed.status == 200 && flushed.body == "dropped 0\n",
            || format!("flush: {} {}", flushed.status, flushed.body),
        )?;
        let got = sink.received() - before;
        if (got.spans, got.events) == expected {
            return Ok(());
        }
        ensure(
            got.spans <= expected.0 && started.elapsed() < TIMEOUT,
            || format!("expected (spans, events) {expected:?} at the sink, got {got:?}"),
        )?;
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn check(mode: Mode, sink: &Sink, dir: &TempDir) -> Result<(), Box<dyn Error>> {
    let server = ServerProcess::start(
        mode,
        &dir.path().join(mode.name()),
        mode.exports().then(|| sink.endpoint()).as_deref(),
        None,
    )?;
    let before = sink.received();
    let expected = expected_page();
    let mut exported = (0, 0);
    for page in Page::EVERY {
        let response = load::get(server.addr(), page.path(), TIMEOUT)?;
        ensure(response.status == 200 && response.body == expected, || {
            format!("{}: {} {:?}", page.path(), response.status, response.body)
        })?;
        let timing = response.header("server-timing");
        if mode.has_timeline() {
            let want = format!("desc=\"SQL-main x{}\"", page.statements());
            ensure(timing.is_some_and(|t| t.contains(&want)), || {
                format!("{}: Server-Timing {timing:?}, expected {want}", page.path())
            })?;
        } else {
            ensure(timing.is_none(), || {
                format!("{}: unexpected Server-Timing {timing:?}", page.path())
            })?;
        }
        let (spans, events) = exported_per_request(mode, page);
        exported = (exported.0 + spans, exported.1 + events);
    }
    let viewer = load::get(server.addr(), "/_timeline/", TIMEOUT)?;
    if mode == Mode::All {
        ensure(
            viewer.status == 200 && viewer.body.contains("/n-plus-one"),
            || format!("the viewer: {} {}", viewer.status, viewer.body),
        )?;
    } else {
        ensure(viewer.status == 404, || {
            format!("/_timeline/ answered {}", viewer.status)
        })?;
    }
    if mode == Mode::Otel {
        // A request like any other there, with no statement.
        exported = (exported.0 + 1, exported.1 + 2);
    }
    if mode.exports() {
        flush_until(&server, sink, before, exported)?;
    }
    if mode.has_timeline() {
        // The README's log line, written as each request ends.
        let started = Instant::now();
        let logged = |page: Page| {
            format!(
                "{} {} queries/external actions issued",
                page.path(),
                page.statements()
            )
        };
        while !Page::EVERY
            .iter()
            .all(|&page| server.stdout().contains(&logged(page)))
        {
            ensure(started.elapsed() < TIMEOUT, || {
                format!("no README log line for both pages in:\n{}", server.stdout())
            })?;
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    // The load generator against both pages, and the server's CPU time.
    for page in Page::EVERY {
        let before = sink.received();
        let result = load::run(&LoadConfig {
            addr: server.addr(),
            path: page.path().into(),
            connections: 4,
            warmup: Duration::from_millis(50),
            duration: Duration::from_millis(300),
            max_requests: 1_000_000,
            server_pid: Some(server.pid()),
        })?;
        ensure(result.errors == 0 && result.completed > 0, || {
            format!("{}: {result:?}", page.path())
        })?;
        ensure(result.cpu_per_request_us().is_some(), || {
            "no server CPU time".into()
        })?;
        if mode.exports() {
            let (spans, events) = exported_per_request(mode, page);
            flush_until(
                &server,
                sink,
                before,
                (spans * result.total, events * result.total),
            )?;
        }
    }
    ensure(load::peak_rss_kib(server.pid())? > 0, || "no VmHWM".into())
}

/// Checks every mode; prints one line per mode.
pub(crate) fn run() -> Result<(), Box<dyn Error>> {
    let sink = Sink::start()?;
    let dir = TempDir::new("self-test", false)?;
    for mode in Mode::EVERY {
        check(mode, &sink, &dir).map_err(|e| format!("self-test, mode {}: {e}", mode.name()))?;
        println!("self-test {}: ok", mode.name());
    }
    ensure(sink.malformed() == 0, || {
        "the sink received export requests it could not parse".into()
    })
}
