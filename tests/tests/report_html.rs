//! The richer OOPS report (actions, request context) and `Report::to_html`:
//! escaped whatever the timeline holds, bounded at 10,000 actions.

use std::time::{Duration, Instant};

use serde_json::Value;
use timeline_core::{Outcome, ReportReason, RequestContext, Timeline};

const HOSTILE: [&str; 5] = [
    "<script>window.pwned = 1</script>",
    "\"><img src=x onerror=alert(1)>",
    "' onmouseover='alert(2)",
    "SELECT 1 -- \u{202E}txt.exe\u{202C}",
    "</pre></details></td></tr></table><h1>injected</h1>",
];

fn hostile_timeline() -> Timeline {
    let timeline = Timeline::new();
    for (n, detail) in HOSTILE.iter().enumerate() {
        let category = if n == 0 { "<b>SQL</b>" } else { "SQL-main" };
        let guard = timeline.start(category, *detail).unwrap();
        guard.finish_with(Outcome::Error(format!("error {detail}")));
    }
    timeline
        .start("SQL-main", "x".repeat(64 * 1024))
        .unwrap()
        .finish();
    timeline
}

#[test]
fn hostile_details_render_as_text() {
    let report = hostile_timeline().report().with_request(
        RequestContext::new("GET", "/bugs/<script>alert(3)</script>")
            .with_status(500)
            .with_reason(ReportReason::ServerError)
            .with_error("boom \"</p><script>alert(4)</script>"),
    );
    let page = report.to_html();
    for needle in ["<script", "<img", "<h1>injected", "='alert"] {
        assert!(
            !page.contains(needle),
            "{needle} reached the page unescaped"
        );
    }
    assert!(page.contains("&lt;script&gt;window.pwned = 1&lt;/script&gt;"));
    assert!(page.contains("&lt;b&gt;SQL&lt;/b&gt;"));
    assert!(page.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    assert!(page.contains("&#39; onmouseover=&#39;alert(2)"));
    assert!(
        !page.contains('\u{202E}'),
        "the RTL override is shown, not obeyed"
    );
    assert!(page.contains("txt.exe[U+202C]"));
    assert!(page.contains("[U+202E]"));
    // The 64 KiB detail is there in full, once in a row's expanded view.
    assert!(page.contains(&"x".repeat(64 * 1024)));
    // The page forbids scripts and loads nothing.
    assert!(page.contains("Content-Security-Policy\" content=\"default-src 'none';"));
    for external in ["http://", "https://", "src=\"", "href=\"http", "@import"] {
        assert!(
            !page.contains(external),
            "{external} in a self-contained page"
        );
    }
    assert!(page.contains("boom &quot;&lt;/p&gt;&lt;script&gt;alert(4)"));
}

#[test]
fn ten_thousand_actions_are_cut_with_a_note() {
    let timeline = Timeline::new();
    for n in 0..10_000 {
        timeline
            .start("SQL-main", format!("SELECT * FROM bug WHERE id = {n}"))
            .unwrap()
            .finish();
    }
    let page = timeline.report().to_html();
    assert!(
        page.contains("Showing the first 1000 of 10000 actions"),
        "no cut note"
    );
    assert_eq!(page.matches("<tr class=\"action\"").count(), 1_000);
    assert!(page.len() < 2 << 20, "{} bytes for 1,000 rows", page.len());
    // The N+1 section and the table per category count all 10,000.
    assert!(page.contains("10000×"));
    assert!(page.contains(">10000</td>"));
}

#[test]
fn a_page_of_many_long_details_stays_bounded() {
    let timeline = Timeline::new();
    for n in 0..1_000 {
        let detail = format!("SELECT {n} -- {}", "y".repeat(64 * 1024));
        timeline.start("SQL-main", detail).unwrap().finish();
    }
    let page = timeline.report().to_html();
    assert!(page.len() < 8 << 20, "{} bytes", page.len());
    assert!(page.contains("more bytes: this page shows 4 MiB of details at most"));
}

#[test]
fn the_page_shows_lanes_nesting_outcomes_and_unfinished_actions() {
    let timeline = Timeline::new();
    let transaction = timeline.start_nested("SQL-main", "BEGIN").unwrap();
    timeline
        .start("SQL-main", "UPDATE bug SET status = 1")
        .unwrap()
        .finish_with(Outcome::Error("CHECK constraint failed".into()));
    transaction.finish();
    let _request = timeline.start("HTTP-get", "https://hook.example/").unwrap();
    timeline.record(
        "memcache-get",
        "bug:1",
        Instant::now(),
        Duration::from_micros(10),
    );
    let page = timeline.report().to_html();
    assert!(
        page.contains("data-lane=\"1\""),
        "a lane for the concurrent action"
    );
    assert!(page.contains("class=\"bar nested\""));
    assert!(page.contains("class=\"seg concurrent\""));
    assert!(page.contains("class=\"bar unfinished\""));
    assert!(page.contains("class=\"bar failed\""));
    assert!(page.contains("unfinished: ends now"));
    assert!(page.contains("CHECK constraint failed"));
    assert!(page.contains("1 overlaps noted"));
    assert!(page.contains("padding-left:1.6em"), "the child is indented");
}

#[test]
fn report_carries_actions_and_request_in_both_forms() {
    let timeline = hostile_timeline();
    std::mem::forget(timeline.start("HTTP-get", "/leaked").unwrap());
    let report = timeline.report().with_request(
        RequestContext::new("POST", "/bugs?token=[filtered]")
            .with_reason(ReportReason::Panicked)
            .with_error("handler bug"),
    );
    let from_serde = serde_json::to_value(&report).unwrap();
    let by_hand: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(from_serde, by_hand);
    let actions = by_hand["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 7);
    assert_eq!(actions[0]["outcome"], "error");
    assert_eq!(actions[0]["error"], format!("error {}", HOSTILE[0]));
    assert_eq!(actions[6]["finished"], false);
    assert!(actions[6]["duration_us"].as_u64().is_some());
    let site = actions[6]["call_site"].as_str().unwrap();
    assert!(site.starts_with("tests/tests/report_html.rs:"), "{site}");
    let request = &by_hand["request"];
    assert_eq!(request["method"], "POST");
    assert_eq!(request["status"], Value::Null);
    assert_eq!(request["reason"], "panicked");
    assert_eq!(request["error"], "handler bug");
    // The python-oops-timeline tuples are unchanged.
    assert_eq!(by_hand["timeline"][0].as_array().unwrap().len(), 5);
}

#[test]
fn microsecond_offsets_survive_where_log_tuples_floor_to_zero() {
    let timeline = Timeline::new();
    timeline.record(
        "SQL-main",
        "SELECT 1",
        Instant::now(),
        Duration::from_micros(250),
    );
    let value: Value = serde_json::from_str(&timeline.report().to_json()).unwrap();
    let tuple = value["timeline"][0].as_array().unwrap();
    assert_eq!(tuple[1].as_u64().unwrap() - tuple[0].as_u64().unwrap(), 0);
    assert_eq!(value["actions"][0]["duration_us"], 250);
}

#[test]
fn repeated_statements_name_their_call_sites() {
    let timeline = Timeline::new();
    for id in 0..3 {
        timeline
            .start("SQL-main", format!("SELECT * FROM bug WHERE id = {id}"))
            .unwrap()
            .finish();
    }
    let line = line!() - 4;
    let page = timeline.report().to_html();
    let n_plus_one = &page[page.find("id=\"n-plus-one\"").unwrap()..];
    assert!(
        n_plus_one.contains(&format!("tests/tests/report_html.rs:{line}:")),
        "{n_plus_one}"
    );
    assert!(n_plus_one.contains(" ×3</td>"), "{n_plus_one}");
}
