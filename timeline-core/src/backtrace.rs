//! Backtraces for people: only the application's own frames.
//!
//! A backtrace captured inside an async handler is about 60 frames of the
//! runtime, `std` and this crate around the two or three lines that issued
//! the query. What a reader wants is those lines.

use std::sync::Arc;

/// Captures a backtrace of the caller, cut to the application's frames.
#[cold]
pub(crate) fn capture() -> Arc<str> {
    let backtrace = std::backtrace::Backtrace::force_capture().to_string();
    Arc::from(application_frames(&backtrace))
}

/// The frames of `backtrace` (as `std::backtrace::Backtrace` displays it)
/// that belong to the application: not `std`, `core` or `alloc`, not a
/// crate from a registry or a git checkout (the async runtime, the web
/// framework, the database driver), not this crate. Frames without a source
/// location (no debug info) cannot be told apart: if nothing is left, the
/// backtrace is kept whole but for the frames of the capture itself, so that
/// nothing is lost.
pub(crate) fn application_frames(backtrace: &str) -> String {
    let kept: String = frames(backtrace)
        .filter(|frame| is_application_frame(frame))
        .collect();
    if kept.is_empty() {
        without_own_frames(backtrace).to_owned()
    } else {
        kept
    }
}

/// The `file:line:column` of the first application frame of `backtrace`.
pub(crate) fn first_application_location(backtrace: &str) -> Option<&str> {
    frames(backtrace)
        .find(|frame| is_application_frame(frame))
        .and_then(frame_file)
}

/// The frames of a displayed backtrace: each a numbered symbol line and the
/// `at` lines after it.
fn frames(backtrace: &str) -> impl Iterator<Item = &str> {
    let mut bounds = Vec::new();
    let mut offset = 0;
    for line in backtrace.split_inclusive('\n') {
        if frame_symbol(line).is_some() {
            bounds.push(offset);
        }
        offset += line.len();
    }
    let frames = bounds.len();
    bounds.push(backtrace.len());
    (0..frames).map(move |i| &backtrace[bounds[i]..bounds[i + 1]])
}

/// The symbol of a frame's first line, `  12: crate::module::function`.
fn frame_symbol(line: &str) -> Option<&str> {
    let (number, symbol) = line.trim_start().split_once(": ")?;
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())).then(|| symbol.trim_end())
}

/// The source location of a frame, from its `at file:line:column` line.
fn frame_file(frame: &str) -> Option<&str> {
    frame
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("at "))
        .map(str::trim_end)
}

fn is_application_frame(frame: &str) -> bool {
    let Some(symbol) = frame.lines().next().and_then(frame_symbol) else {
        return false;
    };
    let Some(file) = frame_file(frame) else {
        return false;
    };
    // A symbol without a path is C's: the thread start, `clone3`.
    symbol.contains("::")
        && !is_own_symbol(symbol)
        && !["/rustc/", "/.cargo/registry/", "/.cargo/git/", "/rustlib/"]
            .iter()
            .any(|dependency| file.contains(dependency))
}

fn is_own_symbol(symbol: &str) -> bool {
    [
        "std::",
        "core::",
        "alloc::",
        "timeline_core::",
        "<timeline_core::",
    ]
    .iter()
    .any(|prefix| symbol.starts_with(prefix))
}

/// The backtrace from the caller's frame on: the frames of the capture and
/// of this crate say nothing about where an action came from.
fn without_own_frames(backtrace: &str) -> &str {
    let mut offset = 0;
    for line in backtrace.split_inclusive('\n') {
        if let Some(symbol) = frame_symbol(line) {
            let own = ["std::backtrace", "timeline_core::", "<timeline_core::"]
                .iter()
                .any(|prefix| symbol.starts_with(prefix));
            if !own {
                return &backtrace[offset..];
            }
        }
        offset += line.len();
    }
    backtrace
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

    #[test]
    fn without_debug_info_keeps_all_but_the_capture() {
        let stripped = "   0: std::backtrace::Backtrace::force_capture
   1: timeline_core::backtrace::capture
   2: bugtracker::pages::load_bug
   3: __rust_try
";
        assert_eq!(
            application_frames(stripped),
            "   2: bugtracker::pages::load_bug\n   3: __rust_try\n"
        );
    }

    #[test]
    fn a_frame_from_a_registry_crate_or_git_is_not_the_application() {
        let frame = "   0: hyper::proto::h1::dispatch::poll
             at /home/u/.cargo/git/checkouts/hyper-1/src/proto/h1/dispatch.rs:1:1
";
        assert!(!is_application_frame(frame));
        assert!(is_application_frame(
            "   0: app::f\n             at /home/u/app/src/main.rs:3:5\n"
        ));
    }

    #[test]
    fn the_first_application_location() {
        assert_eq!(
            first_application_location(ASYNC_HANDLER),
            Some("./examples/src/pages.rs:42:9")
        );
        let driver_thread = "   0: sqlx_sqlite::connection::worker::run
             at /root/.cargo/registry/src/index.crates.io-1/sqlx-sqlite-0.8.6/src/connection/worker.rs:1:1
";
        assert_eq!(application_frames(driver_thread), driver_thread);
        assert_eq!(first_application_location(driver_thread), None);
    }

    #[test]
    fn c_frames_are_not_the_application() {
        let frame = "  35: start_thread\n             at ./nptl/pthread_create.c:442:8\n";
        assert!(!is_application_frame(frame));
    }

    #[test]
    fn a_frame_line_starts_with_its_number() {
        assert_eq!(frame_symbol("  12: app::f\n"), Some("app::f"));
        assert_eq!(frame_symbol("note: not a frame"), None);
        assert_eq!(frame_symbol(": no number"), None);
    }

    #[test]
    fn text_that_is_not_a_backtrace_is_kept() {
        assert_eq!(application_frames("no frames here"), "no frames here");
        assert_eq!(application_frames(""), "");
    }
}
