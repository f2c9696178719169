//! The tests of the core in one binary, for mutation testing only (feature
//! `mutants`): `cargo mutants` rebuilds every test binary per mutant, and
//! one binary links once instead of twenty times. Each file is still its
//! own test binary in an ordinary `cargo test`. The tests that count
//! allocations or measure memory stay apart: they need the process to
//! themselves.

#[path = "core_concurrent.rs"]
mod core_concurrent;
#[path = "core_current.rs"]
mod core_current;
#[path = "core_guard.rs"]
mod core_guard;
#[path = "core_limits.rs"]
mod core_limits;
#[path = "core_log_tuples.rs"]
mod core_log_tuples;
#[path = "core_model.rs"]
mod core_model;
#[path = "core_overlap.rs"]
mod core_overlap;
#[path = "core_stress.rs"]
mod core_stress;
#[path = "hardening.rs"]
mod hardening;
#[path = "integration_tracing.rs"]
mod integration_tracing;
#[path = "n_plus_one_tools.rs"]
mod n_plus_one_tools;
#[path = "report_exports.rs"]
mod report_exports;
#[path = "report_golden.rs"]
mod report_golden;
#[path = "testing_assertions.rs"]
mod testing_assertions;
#[path = "timed_async.rs"]
mod timed_async;
#[path = "timed_err.rs"]
mod timed_err;
#[path = "timed_hygiene.rs"]
mod timed_hygiene;
#[path = "timed_methods.rs"]
mod timed_methods;
#[path = "timed_overlap.rs"]
mod timed_overlap;
#[path = "timed_sync.rs"]
mod timed_sync;
