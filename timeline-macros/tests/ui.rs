//! Compile-time behaviour of `#[timed]`: every misuse is an error at the
//! offending tokens (`ui/*.rs`, with `.stderr` snapshots), and what the
//! other test files cannot hold compiles and runs (`ui/pass/*.rs`).
//!
//! Here rather than in `tests/`, so that trybuild builds this crate's few
//! dev-dependencies and not every integration's.
//!
//! Refresh the snapshots with
//! `TRYBUILD=overwrite cargo test -p timeline-macros --test ui`, then read them.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
