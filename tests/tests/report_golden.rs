//! Golden tests: the summary, waterfall and Server-Timing header of a
//! timeline with fixed timings, checked against files under `golden/`.
//!
//! To accept a deliberate change, run with `UPDATE_GOLDEN=1` and review the
//! diff of the files.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use timeline_core::__hooks::{fixed_timeline, push_fixed};
use timeline_core::Outcome;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A request of 100 ms: a query whose driver did not report its outcome
/// (sqlx's), an N+1 loop, a transaction with a failed update and a mail,
/// and an HTTP call still running.
fn request() -> timeline_core::Timeline {
    let baseline = UNIX_EPOCH + Duration::from_secs(1_798_416_000);
    let timeline = fixed_timeline(baseline, ms(100));
    let ok = || Outcome::Ok;
    push_fixed(
        &timeline,
        "SQL-main",
        "SELECT * FROM bug WHERE product = 1",
        ms(1),
        Some(ms(10)),
        false,
        Outcome::NotReported,
    );
    for (n, id) in [7, 8, 9].into_iter().enumerate() {
        let start = ms(12 + 4 * n as u64);
        let detail = format!("SELECT name, email FROM person WHERE id = {id}");
        push_fixed(
            &timeline,
            "SQL-main",
            detail,
            start,
            Some(ms(2 + n as u64)),
            false,
            ok(),
        );
    }
    push_fixed(
        &timeline,
        "SQL-main",
        "BEGIN … COMMIT",
        ms(30),
        Some(ms(40)),
        true,
        ok(),
    );
    push_fixed(
        &timeline,
        "SQL-main",
        "UPDATE bug SET status = 'Won''t Fix' WHERE id = 7",
        ms(31),
        Some(Duration::from_micros(5_250)),
        false,
        Outcome::Error("CHECK constraint failed: status".into()),
    );
    push_fixed(
        &timeline,
        "mail-send",
        "to: person7@bugs.example",
        ms(40),
        Some(ms(20)),
        false,
        ok(),
    );
    push_fixed(
        &timeline,
        "HTTP-get",
        "https://api.example/hook\r\nX-Evil: 1",
        ms(80),
        None,
        false,
        ok(),
    );
    timeline
}

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert_eq!(actual, expected, "{name} differs from {}", path.display());
}

#[test]
fn summary_line() {
    check("summary_line.txt", &format!("{}\n", request().summary()));
}

#[test]
fn summary_breakdown() {
    check(
        "summary_breakdown.txt",
        &format!("{:#}\n", request().summary()),
    );
}

#[test]
fn waterfall() {
    check("waterfall.txt", &request().waterfall(50));
}

#[test]
fn server_timing() {
    check(
        "server_timing.txt",
        &format!("{}\n", request().server_timing()),
    );
}

#[test]
fn log_tuples() {
    let tuples: Vec<String> = request()
        .log_tuples()
        .iter()
        .map(|t| format!("{} {} {} {:?}", t.start_ms, t.end_ms, t.category, t.detail))
        .collect();
    check("log_tuples.txt", &(tuples.join("\n") + "\n"));
}

#[test]
fn report_json_without_id() {
    let json = request().report().to_json();
    // The id is unique per report: everything after it is fixed.
    let after_id = &json[json.find(",\"baseline\"").unwrap()..];
    check("report.json", &format!("{after_id}\n"));
}

#[test]
fn baseline_is_rfc3339_utc() {
    let json = request().report().to_json();
    assert!(
        json.contains(r#""baseline":"2026-12-28T00:00:00.000000Z""#),
        "{json}"
    );
    let _ = SystemTime::now();
}

/// The report of `request()` as the tower layer makes it for a 500.
fn request_report() -> timeline_core::Report {
    request().report().with_request(
        timeline_core::RequestContext::new("POST", "/bugs/7/status")
            .with_status(500)
            .with_reason(timeline_core::ReportReason::ServerError)
            .with_error("CHECK constraint failed: status"),
    )
}

#[test]
fn report_json_with_request() {
    let report = request_report();
    let json = report.to_json();
    let after_id = &json[json.find(",\"baseline\"").unwrap()..];
    check("report_request.json", &format!("{after_id}\n"));
}

#[test]
fn report_html() {
    let report = request_report();
    let page = report.to_html().replace(report.id(), "OOPS-ID");
    check("report.html", &page);
}
