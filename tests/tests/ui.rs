//! Compile-time behaviour of `#[timed]`: every misuse is an error at the
//! offending tokens (`ui/*.rs`, with `.stderr` snapshots), and what the
//! other test files cannot hold compiles and runs (`ui/pass/*.rs`).
//!
//! Refresh the snapshots with `TRYBUILD=overwrite cargo test --test ui`,
//! then read them.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/*.rs");
    cases.pass("ui/pass/*.rs");
}
