//! Cross-crate tests of `timeline`: each file under `tests/` covers one
//! feature, against the public contract only.
//!
//! This library holds what more than one of those files needs, so that a
//! helper is written, documented and fixed in one place:
//!
//! - [`future`]: polling futures by hand, without a runtime.
//! - [`checks`]: what assertions are built on (a panic's message, a
//!   timeline's details, `Send` bounds, a value that counts its formatting).
//! - [`bugs`]: the example bug tracker's SQLite database in a temporary file.
//! - [`server`]: an axum app on a loopback port and an HTTP client for it.
//! - [`viewer_app`]: the bug tracker behind the timeline layer and its
//!   viewer, with requests that hang, panic or carry hostile details.
//! - [`log`]: a `tracing_subscriber::fmt` writer the test reads back.
//! - [`otel`]: the OpenTelemetry SDK's in-memory exporter and span
//!   attributes.
//! - [`process`]: a child process under a deadline.
//! - [`postgres`]: a schema of its own for each PostgreSQL test, on the
//!   cluster `scripts/test` starts.
//! - [`sea_orm_shape`]: sea-orm 2.0's statement spans around any driver
//!   call, exactly as sea-orm makes and records them.
//! - [`driver_log`]: the elapsed time sqlx's own events report, per
//!   statement, to compare actions with.
//! - [`subscriber`]: the global `tracing` subscriber with the
//!   `TimelineLayer`, as the docs tell users to install it.

pub mod bugs;
pub mod checks;
pub mod driver_log;
pub mod future;
pub mod log;
pub mod otel;
pub mod postgres;
pub mod process;
pub mod sea_orm_shape;
pub mod server;
pub mod subscriber;
pub mod viewer_app;

/// The README's code blocks, compiled and run as doctests of this package
/// (`cargo test -p timeline-tests --doc`), with its dependencies: every
/// snippet a reader copies builds.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
