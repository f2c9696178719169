//! The benchmark cannot rot unnoticed: its server answers both pages in
//! every mode with the instrumentation working, and its driver runs every
//! mode and page and reports them.

use std::process::Command;

fn served_bench(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_served-bench"))
        .args(args)
        .output()
        .expect("served-bench runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "served-bench {args:?} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

#[test]
fn every_mode_serves_both_pages_with_its_instrumentation() {
    let (stdout, _) = served_bench(&["self-test"]);
    for mode in ["fmt", "readme", "all", "otel"] {
        assert!(
            stdout.contains(&format!("self-test {mode}: ok")),
            "{stdout}"
        );
    }
}

#[test]
fn the_driver_reports_every_mode_and_page_against_fmt() {
    let (stdout, stderr) = served_bench(&[
        "--rounds",
        "1",
        "--warmup",
        "0.05",
        "--duration",
        "0.2",
        "--connections",
        "4",
    ]);
    assert_eq!(stderr.matches(" req/s, p99 ").count(), 8, "{stderr}");
    for page in ["one-query", "N+1"] {
        assert!(
            stdout.contains(&format!("| {page} | fmt | 1.00 | 1.00 | 1.00 |")),
            "{stdout}"
        );
        for mode in ["readme", "all", "otel"] {
            assert!(
                stdout.contains(&format!("| {page} | {mode} | ")),
                "{stdout}"
            );
        }
    }
    // Every request exported: the request span and one per statement; with
    // tracing-opentelemetry one span whose events include every statement.
    assert!(
        stdout.contains("| N+1 | all |") && stdout.contains("| 22.00 (0.00) |"),
        "{stdout}"
    );
    assert!(stdout.contains("| 1.00 (23.00) |"), "{stdout}");
    assert!(stdout.contains("clocksource `"), "{stdout}");
}
