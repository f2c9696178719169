//! Backtraces for people: only the application's own frames.
//!
//! A backtrace captured inside an async handler is about 60 frames of the
//! runtime, `std` and this crate around the two or three lines that issued
//! the query. What a reader wants is those lines — and where there are
//! none (a database driver's own thread), nothing: frames of the
//! dependencies would send the reader to the wrong place.
//!
//! A frame is the application's when
//!
//! - it has a source location (the build has line tables), outside the
//!   sources cargo downloads (`…/registry/src/…`, `…/git/checkouts/…`),
//!   vendored ones (`vendor/…`), Rust's own (`/rustc/…`) and this crate's;
//!   or
//! - no frame of the backtrace has such a location — a release build
//!   without line tables, or a thread that runs no code of the
//!   application — and its function's crate, from the symbol name, is none
//!   of Rust's own, this crate's or the known dependencies' in
//!   `DEPENDENCIES`. So a release build still names the function.

use std::sync::Arc;

/// Captures a backtrace of the caller, cut to the application's frames;
/// `None` when it has none (a driver's worker thread).
#[cold]
pub(crate) fn capture() -> Option<Arc<str>> {
    let backtrace = std::backtrace::Backtrace::force_capture().to_string();
    let frames = application_frames(&backtrace);
    (!frames.is_empty()).then(|| Arc::from(frames))
}

/// The frames of `backtrace` (as `std::backtrace::Backtrace` displays it)
/// that belong to the application (see the module), in order; empty when
/// none does.
pub(crate) fn application_frames(backtrace: &str) -> String {
    let frames: Vec<Frame<'_>> = frames(backtrace).collect();
    let by_location = frames.iter().any(Frame::is_located_application);
    frames
        .iter()
        .filter(|frame| frame.is_application(by_location))
        .map(|frame| frame.text)
        .collect()
}

/// The first frame of `frames` — what [`application_frames`] returned —
/// as `(function, location)`, the location `file:line:column` when the
/// frame has one.
pub(crate) fn first_frame(frames: &str) -> Option<(&str, Option<&str>)> {
    let frame = self::frames(frames).next()?;
    Some((frame.symbol, frame.location))
}

/// One frame of a displayed backtrace: a numbered symbol line and the `at`
/// lines after it.
struct Frame<'a> {
    text: &'a str,
    symbol: &'a str,
    location: Option<&'a str>,
}

impl Frame<'_> {
    /// An application frame with a source location.
    fn is_located_application(&self) -> bool {
        let Some(location) = self.location else {
            return false;
        };
        // A symbol without a path is C's (the thread start, `clone3`) or,
        // in a Rust file, a function inlined into its caller.
        (self.symbol.contains("::") || location.contains(".rs:"))
            && !["/rustc/", "/registry/src/", "/git/checkouts/", "/rustlib/", "vendor/"]
                .iter()
                .any(|dependency| location.contains(dependency))
            && !is_own_file(location)
            // By the path, not the list of dependencies: an application's
            // crate may share a name with one (a test file `tests/sqlx.rs`).
            && crate_of(self.symbol).is_none_or(|name| !RUST_AND_OWN.contains(&name))
    }

    /// Whether the frame is the application's, given whether the
    /// backtrace has located application frames.
    fn is_application(&self, by_location: bool) -> bool {
        if by_location {
            return self.is_located_application();
        }
        // No line tables for the application: by the symbol alone.
        self.location.is_none() && crate_of(self.symbol).is_some_and(|name| !is_dependency(name))
    }
}

/// Whether `location` is in this crate's sources: a function of this crate
/// inlined into another is named without its path, so only its file tells.
/// (From a registry, the path says so already; this is for a checkout.)
fn is_own_file(location: &str) -> bool {
    let package = env!("CARGO_MANIFEST_DIR")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let sources = format!("{package}/src/");
    let file = location.replace('\\', "/");
    file.starts_with(&sources) || file.contains(&format!("/{sources}"))
}

/// The frames of a displayed backtrace.
fn frames(backtrace: &str) -> impl Iterator<Item = Frame<'_>> {
    let mut bounds = Vec::new();
    let mut offset = 0;
    for line in backtrace.split_inclusive('\n') {
        if frame_symbol(line).is_some() {
            bounds.push(offset);
        }
        offset += line.len();
    }
    let count = bounds.len();
    bounds.push(backtrace.len());
    (0..count).filter_map(move |i| {
        let text = &backtrace[bounds[i]..bounds[i + 1]];
        let symbol = text.lines().next().and_then(frame_symbol)?;
        let location = text
            .lines()
            .find_map(|line| line.trim_start().strip_prefix("at "))
            .map(str::trim_end);
        Some(Frame {
            text,
            symbol,
            location,
        })
    })
}

/// The symbol of a frame's first line, `  12: crate::module::function`.
fn frame_symbol(line: &str) -> Option<&str> {
    let (number, symbol) = line.trim_start().split_once(": ")?;
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())).then(|| symbol.trim_end())
}

/// The crate a symbol belongs to: its first path segment, or for
/// `<Type as Trait>::method` the type's crate (the trait's when the type
/// is no path: `<&T as …>`, `<F as …>`, `<[T] as …>`). `None` for a symbol
/// that is no Rust path (C's `start_thread`).
fn crate_of(symbol: &str) -> Option<&str> {
    if let Some(qualified) = symbol.strip_prefix('<') {
        let (self_type, rest) = qualified.split_once(" as ")?;
        return crate_of(self_type).or_else(|| crate_of(rest));
    }
    let (first, _) = symbol.split_once("::")?;
    let is_crate_name = first
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && first
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    is_crate_name.then_some(first)
}

/// Crates that are never the application: Rust's own, this crate, and the
/// ones a web service's requests run through — runtimes, servers,
/// middleware, futures, `tracing`, database drivers, ORMs and pools, HTTP
/// clients. Consulted for frames without a source location only.
const DEPENDENCIES: &str = "
    std core alloc proc_macro test panic_unwind panic_abort compiler_builtins std_detect
    backtrace gimli addr2line miniz_oxide rustc_demangle hashbrown
    timeline_core timeline_macros
    tokio tokio_util tokio_stream mio hyper hyper_util h2 http http_body http_body_util httparse
    bytes axum axum_core matchit tower tower_http tower_layer tower_service tonic actix_web
    actix_http actix_rt actix_server actix_service warp rocket poem salvo async_std async_io
    async_executor async_task smol
    futures futures_util futures_core futures_executor futures_channel futures_lite
    async_stream async_trait pin_project pin_project_lite flume crossbeam_channel
    crossbeam_utils crossbeam_epoch event_listener async_channel parking_lot parking_lot_core
    once_cell either
    tracing tracing_core tracing_subscriber tracing_futures tracing_log tracing_attributes
    tracing_opentelemetry log opentelemetry opentelemetry_sdk opentelemetry_otlp metrics
    sqlx sqlx_core sqlx_sqlite sqlx_postgres sqlx_mysql sea_orm sea_query sea_query_binder
    diesel diesel_async deadpool deadpool_diesel deadpool_postgres deadpool_runtime
    deadpool_sync bb8 r2d2 rusqlite libsqlite3_sys tokio_postgres postgres postgres_protocol
    mysql_async redis mongodb
    reqwest reqwest_middleware reqwest_tracing rustls tokio_rustls native_tls openssl
    aws_config aws_runtime aws_types
";

/// Rust's own crates and this one: never the application, wherever their
/// sources are.
const RUST_AND_OWN: &[&str] = &["std", "core", "alloc", "timeline_core"];

/// Crate name prefixes of families too large to list.
const DEPENDENCY_PREFIXES: &[&str] = &["aws_sdk_", "aws_smithy_"];

fn is_dependency(name: &str) -> bool {
    DEPENDENCIES
        .split_ascii_whitespace()
        .any(|known| known == name)
        || DEPENDENCY_PREFIXES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASYNC_HANDLER: &str = "   0: std::backtrace::Backtrace::force_capture
             at /rustc/5980/library/std/src/backtrace.rs:312:13
   1: timeline_core::backtrace::capture
             at ./timeline-core/src/backtrace.rs:12:21
   2: bugtracker::pages::load_bug
             at ./examples/src/pages.rs:42:9
   3: bugtracker::pages::bug_page::{{closure}}
             at ./examples/src/pages.rs:80:20
   4: tokio::runtime::task::core::Core<T,S>::poll::{{closure}}
             at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/runtime/task/core.rs:380:24
   5: <core::panic::unwind_safe::AssertUnwindSafe<F> as core::ops::function::FnOnce<()>>::call_once
             at /rustc/5980/library/core/src/panic/unwind_safe.rs:274:9
   6: __rust_try
   7: clone
";

    #[test]
    fn keeps_the_application_frames_only() {
        assert_eq!(
            application_frames(ASYNC_HANDLER),
            "   2: bugtracker::pages::load_bug
             at ./examples/src/pages.rs:42:9
   3: bugtracker::pages::bug_page::{{closure}}
             at ./examples/src/pages.rs:80:20
"
        );
    }

    /// What a release build without line tables shows for a sqlx query in
    /// an axum handler: the application's function is named, by its crate.
    #[test]
    fn without_line_tables_the_application_is_told_by_its_crate() {
        let stripped = "   0: std::backtrace::Backtrace::force_capture
   1: timeline_core::backtrace::capture
   2: <tracing_subscriber::layer::layered::Layered<L,S> as tracing_core::subscriber::Subscriber>::event
   3: sqlx_core::logger::QueryLogger::finish
   4: <futures_util::stream::try_stream::try_collect::TryCollect<St,C> as core::future::future::Future>::poll
   5: bugtracker::pages::bug_page::{{closure}}
   6: <F as futures_core::future::TryFuture>::try_poll
   7: axum::routing::route::Route<E>::oneshot_inner
   8: <timeline_core::integrations::tower::ResponseFuture<F> as core::future::future::Future>::poll
   9: hyper::proto::h1::dispatch::Dispatcher<D,Bs,I,T>::poll_catch
  10: tokio::runtime::task::harness::Harness<T,S>::poll
  11: std::sys::pal::unix::thread::Thread::new::thread_start
  12: start_thread
  13: __rust_try
";
        assert_eq!(
            application_frames(stripped),
            "   5: bugtracker::pages::bug_page::{{closure}}\n"
        );
    }

    /// sqlx runs SQLite statements on a worker thread of its own: nothing
    /// there is the application's, and nothing is shown.
    #[test]
    fn a_driver_thread_has_no_application_frame() {
        let worker = "   0: std::backtrace::Backtrace::force_capture
             at /rustc/5980/library/std/src/backtrace.rs:312:13
   1: timeline_core::backtrace::capture
   2: <tracing_subscriber::filter::layer_filters::Filtered<L,F,S> as tracing_subscriber::layer::Layer<S>>::on_event
   3: tracing_core::event::Event::dispatch
   4: sqlx_core::logger::QueryLogger::finish
   5: sqlx_sqlite::connection::worker::ConnectionWorker::establish::{{closure}}
   6: std::sys::backtrace::__rust_begin_short_backtrace
             at /rustc/5980/library/std/src/sys/backtrace.rs:152:18
   7: <alloc::boxed::Box<F,A> as core::ops::function::FnOnce<Args>>::call_once
             at /rustc/5980/library/alloc/src/boxed.rs:1999:9
   8: start_thread
             at ./nptl/pthread_create.c:442:8
   9: clone3
";
        assert_eq!(application_frames(worker), "");
        // With line tables for the driver, from the registry.
        let located = "   0: sqlx_sqlite::connection::worker::run
             at /usr/local/cargo/registry/src/index.crates.io-1/sqlx-sqlite-0.8.6/src/connection/worker.rs:1:1
";
        assert_eq!(application_frames(located), "");
        assert_eq!(first_frame(&application_frames(located)), None);
    }

    #[test]
    fn located_frames_outrank_the_unlocated_ones() {
        // The application has line tables and the dependencies none (this
        // workspace's dev profile): an unlocated frame is a dependency's,
        // whatever its crate.
        let mixed = "   0: some_unlisted_dependency::poll
   1: app::handler::{{closure}}
             at ./src/handler.rs:7:5
";
        assert_eq!(
            application_frames(mixed),
            "   1: app::handler::{{closure}}\n             at ./src/handler.rs:7:5\n"
        );
    }

    #[test]
    fn a_frame_from_a_registry_crate_git_or_a_vendored_dependency_is_not_the_application() {
        let git = "   0: hyper::proto::h1::dispatch::poll
             at /home/u/.cargo/git/checkouts/hyper-1/src/proto/h1/dispatch.rs:1:1
";
        assert_eq!(application_frames(git), "");
        let vendored = "   0: tokio::runtime::park::block_on
             at ./vendor/tokio/src/runtime/park.rs:1:1
";
        assert_eq!(application_frames(vendored), "");
        let app = "   0: app::f\n             at /home/u/app/src/main.rs:3:5\n";
        assert_eq!(application_frames(app), app);
        // A test named like a dependency is told by its path.
        let test = "   0: sqlx::loads_a_bug\n             at ./tests/sqlx.rs:3:5\n";
        assert_eq!(application_frames(test), test);
    }

    #[test]
    fn the_first_frame_with_and_without_a_location() {
        let frames = application_frames(ASYNC_HANDLER);
        assert_eq!(
            first_frame(&frames),
            Some((
                "bugtracker::pages::load_bug",
                Some("./examples/src/pages.rs:42:9")
            ))
        );
        assert_eq!(
            first_frame("   5: app::page::{{closure}}\n"),
            Some(("app::page::{{closure}}", None))
        );
        assert_eq!(first_frame(""), None);
    }

    #[test]
    fn an_inlined_frame_is_named_without_its_path() {
        let inlined = "   4: a_test_function\n             at ./tests/checks.rs:267:5\n";
        assert_eq!(application_frames(inlined), inlined);
        assert_eq!(
            first_frame(inlined),
            Some(("a_test_function", Some("./tests/checks.rs:267:5")))
        );
    }

    #[test]
    fn a_function_of_this_crate_inlined_elsewhere_is_not_the_application() {
        let inlined = "   2: push_recorded
             at /home/u/timeline/timeline-core/src/record/state.rs:629:30
   3: record_ended_now
             at ./timeline-core/src/record/timeline.rs:300:14
   4: app::page
             at ./src/page.rs:3:5
";
        assert_eq!(
            application_frames(inlined),
            "   4: app::page\n             at ./src/page.rs:3:5\n"
        );
        assert!(!is_own_file("./my-timeline-core/src/lib.rs:1:1"));
        assert!(!is_own_file("./src/timeline-core.rs:1:1"));
        assert!(is_own_file("/home/u/src/x/timeline-core/src/lib.rs:1:1"));
    }

    #[test]
    fn c_frames_are_not_the_application() {
        let frame = "  35: start_thread\n             at ./nptl/pthread_create.c:442:8\n";
        assert_eq!(application_frames(frame), "");
        assert_eq!(application_frames("  36: clone3\n"), "");
    }

    #[test]
    fn the_crate_of_a_symbol() {
        assert_eq!(crate_of("app::f"), Some("app"));
        assert_eq!(crate_of("my_app2::m::f::{{closure}}"), Some("my_app2"));
        assert_eq!(
            crate_of("<app::Page as core::future::future::Future>::poll"),
            Some("app")
        );
        assert_eq!(
            crate_of("<F as futures_core::future::TryFuture>::try_poll"),
            Some("futures_core")
        );
        assert_eq!(crate_of("<&T as core::fmt::Display>::fmt"), Some("core"));
        assert_eq!(crate_of("start_thread"), None);
        assert_eq!(crate_of("Foo::bar"), None);
        assert!(is_dependency("aws_sdk_s3") && is_dependency("tokio"));
        assert!(!is_dependency("bugtracker"));
    }

    #[test]
    fn a_frame_line_starts_with_its_number() {
        assert_eq!(frame_symbol("  12: app::f\n"), Some("app::f"));
        assert_eq!(frame_symbol("note: not a frame"), None);
        assert_eq!(frame_symbol(": no number"), None);
    }

    #[test]
    fn text_that_is_not_a_backtrace_has_no_application_frame() {
        assert_eq!(application_frames("no frames here"), "");
        assert_eq!(application_frames(""), "");
    }
}
