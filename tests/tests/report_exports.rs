//! The OOPS report, the Chrome trace, the Server-Timing header and the
//! waterfall, on real timelines: well formed whatever the input.

use std::time::{Duration, Instant};

use serde_json::Value;
use timeline_core::{Outcome, Timeline, timed};

fn busy_timeline() -> Timeline {
    let timeline = Timeline::builder().capture_backtraces(true).build();
    let transaction = timeline.start_nested("SQL-main", "BEGIN").unwrap();
    for id in 0..3 {
        timeline
            .start("SQL-main", format!("SELECT * FROM person WHERE id = {id}"))
            .unwrap()
            .finish();
    }
    transaction.finish();
    timeline.record(
        "memcache-get",
        "user:\"1\"\n",
        Instant::now(),
        Duration::from_micros(300),
    );
    timeline
}

#[test]
fn serde_and_to_json_give_the_same_document() {
    let timeline = busy_timeline();
    std::mem::forget(timeline.start("HTTP-get", "/leaked").unwrap());
    let report = timeline.report();
    let from_serde = serde_json::to_value(&report).unwrap();
    let by_hand: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(from_serde, by_hand);
    for key in [
        "id",
        "baseline",
        "duration_ms",
        "timeline",
        "summary",
        "violations",
        "dropped",
    ] {
        assert!(from_serde.get(key).is_some(), "no {key} in {from_serde}");
    }
}

#[test]
fn report_timeline_is_python_oops_timeline_tuples() {
    let report = busy_timeline().report();
    let value = serde_json::to_value(&report).unwrap();
    let tuples = value["timeline"].as_array().unwrap();
    assert_eq!(
        tuples.len(),
        6,
        "BEGIN-start, 3 selects, BEGIN-stop, memcache"
    );
    for tuple in tuples {
        let tuple = tuple.as_array().unwrap();
        assert_eq!(tuple.len(), 5);
        assert!(tuple[0].as_u64().unwrap() <= tuple[1].as_u64().unwrap());
        assert!(tuple[2].is_string() && tuple[3].is_string());
        let is_stop = tuple[2].as_str().unwrap().ends_with("-stop");
        assert_eq!(
            tuple[4].is_string(),
            !is_stop,
            "backtraces were captured at each start"
        );
    }
    assert_eq!(tuples[0][2], "SQL-main-start");
    assert_eq!(value["summary"]["actions"], 4);
}

#[test]
fn report_ids_are_unique() {
    let timeline = Timeline::new();
    let ids: std::collections::HashSet<String> = (0..1_000)
        .map(|_| timeline.report().id().to_owned())
        .collect();
    assert_eq!(ids.len(), 1_000);
}

#[test]
fn report_records_violations() {
    #[timed(category = "SQL-main", detail = "SELECT 1")]
    fn query() {}
    let timeline = Timeline::new();
    timeline.scope(|| {
        let _open = timeline.start("HTTP-get", "/slow").unwrap();
        query();
    });
    let value = serde_json::to_value(timeline.report()).unwrap();
    assert_eq!(value["violations"][0]["open"]["category"], "HTTP-get");
    assert_eq!(value["violations"][0]["attempted"]["detail"], "SELECT 1");
    let trace: Value = serde_json::from_str(&timeline.to_chrome_trace()).unwrap();
    let instants: Vec<&Value> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "i")
        .collect();
    assert_eq!(instants.len(), 1);
}

#[test]
fn chrome_trace_has_a_complete_event_per_action_nesting_spanning_children() {
    let timeline = busy_timeline();
    let trace: Value = serde_json::from_str(&timeline.to_chrome_trace()).unwrap();
    let events: Vec<&Value> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .collect();
    assert_eq!(events.len(), timeline.len());
    for event in &events {
        for key in ["name", "cat", "ts", "dur", "pid", "tid"] {
            assert!(event.get(key).is_some(), "{key} missing in {event}");
        }
    }
    let begin = events
        .iter()
        .find(|e| e["args"]["detail"] == "BEGIN")
        .unwrap();
    let (begin_ts, begin_end) = (
        begin["ts"].as_f64().unwrap(),
        begin["ts"].as_f64().unwrap() + begin["dur"].as_f64().unwrap(),
    );
    let children = events
        .iter()
        .filter(|e| e["args"]["detail"].as_str().unwrap().starts_with("SELECT"));
    for child in children {
        let ts = child["ts"].as_f64().unwrap();
        assert!(
            begin_ts <= ts && ts + child["dur"].as_f64().unwrap() <= begin_end + 0.001,
            "{child} outside {begin}"
        );
    }
    let memcache = events.iter().find(|e| e["cat"] == "memcache-get").unwrap();
    assert_eq!(
        memcache["args"]["detail"], "user:\"1\"\n",
        "details survive escaping"
    );
    assert!(
        (memcache["dur"].as_f64().unwrap() - 300.0).abs() < 0.001,
        "microseconds"
    );
}

/// Splits a Server-Timing value into entries of parameters, honouring
/// quoted strings (with their backslash escapes) as RFC 9110 has them.
fn parse_server_timing(header: &str) -> Vec<Vec<String>> {
    let mut entries = vec![vec![String::new()]];
    let mut chars = header.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        let entry = entries.last_mut().unwrap();
        match (quoted, c) {
            (true, '\\') => entry
                .last_mut()
                .unwrap()
                .push(chars.next().expect("escaped char")),
            (_, '"') => quoted = !quoted,
            (false, ',') => entries.push(vec![String::new()]),
            (false, ';') => entry.push(String::new()),
            (false, ' ') if entry.last().unwrap().is_empty() => {}
            (_, c) => entry.last_mut().unwrap().push(c),
        }
    }
    assert!(!quoted, "unterminated quoted string in {header:?}");
    entries
}

/// RFC 9110 `token` characters.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

#[test]
fn server_timing_is_a_valid_header_with_no_detail() {
    let timeline = Timeline::new();
    let hostile = "SQL main\r\nSet-Cookie: x=1;\"é\"";
    timeline
        .start(hostile, "SELECT secret_column FROM t")
        .unwrap()
        .finish();
    timeline.start("memcache-get", "key").unwrap().finish();
    let header = timeline.server_timing();
    assert!(
        header.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "visible ASCII only: {header:?}"
    );
    assert!(!header.contains("secret_column"));
    let entries = parse_server_timing(&header);
    assert_eq!(entries.len(), 3, "{header}");
    for params in &entries {
        assert!(is_token(&params[0]), "{:?} is not a token", params[0]);
        let dur = params[1].strip_prefix("dur=").unwrap();
        assert!(dur.parse::<f64>().unwrap() >= 0.0);
    }
    // CR and LF dropped, quotes escaped, non-ASCII replaced: still one entry.
    assert_eq!(entries[0][0], "SQL_main__Set-Cookie__x_1____");
    assert_eq!(entries[0][2], r#"desc=SQL mainSet-Cookie: x=1;"?" x1"#);
    assert_eq!(entries[2][0], "total");
}

#[test]
fn server_timing_of_an_empty_timeline_has_only_the_total() {
    let header = Timeline::new().server_timing();
    assert!(header.starts_with("total;dur="), "{header}");
}

#[test]
fn waterfall_never_panics_on_odd_widths_or_timelines() {
    let empty = Timeline::new();
    assert_eq!(empty.waterfall(0).lines().count(), 1);
    let timeline = busy_timeline();
    for width in [0, 1, 7, 80, usize::MAX] {
        let text = timeline.waterfall(width);
        assert_eq!(text.lines().count(), 1 + timeline.len());
    }
    let bars: Vec<usize> = timeline
        .waterfall(40)
        .lines()
        .skip(1)
        .map(|line| line.split('|').nth(1).unwrap().chars().count())
        .collect();
    assert!(bars.iter().all(|&n| n == 40), "{bars:?}");
}

#[test]
fn a_report_with_a_leaked_guard_still_serialises() {
    let timeline = Timeline::new();
    std::mem::forget(timeline.start("SQL-main", "SELECT pg_sleep(60)").unwrap());
    let report = timeline.report();
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(value["timeline"][0][3], "SELECT pg_sleep(60)");
    assert!(timeline.summary().to_string().starts_with("1 queries"));
    assert!(format!("{:#}", timeline.summary()).contains("(unfinished)"));
}

#[test]
fn summary_counts_dropped_actions() {
    let timeline = Timeline::builder().max_actions(2).build();
    for _ in 0..5 {
        timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    }
    let summary = timeline.summary();
    assert_eq!(summary.action_count(), 5);
    assert!(
        summary
            .to_string()
            .starts_with("5 queries/external actions issued in ")
    );
    assert!(format!("{summary:#}").contains("3 actions not stored"));
}

/// An outcome the source did not report shows as such in every output, and
/// as a success in none.
#[test]
fn an_outcome_not_reported_says_so_everywhere() {
    let timeline = Timeline::new();
    timeline
        .start("SQL-main", "INSERT INTO bug VALUES (1)")
        .unwrap()
        .finish_with(Outcome::NotReported);
    let report = timeline.report();
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["actions"][0]["outcome"], "not_reported");
    assert_eq!(json["actions"][0]["error"], Value::Null);
    assert_eq!(serde_json::to_value(&report).unwrap(), json);
    let chrome: Value = serde_json::from_str(&timeline.to_chrome_trace()).unwrap();
    let event = chrome["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["ph"] == "X")
        .unwrap();
    assert_eq!(event["args"]["outcome"], "not reported", "{chrome}");
    assert!(
        format!("{:#}", timeline.summary())
            .contains("INSERT INTO bug VALUES (1) (outcome not reported)")
    );
    assert!(timeline.waterfall(40).contains("(outcome not reported)"));
    let page = report.to_html();
    assert!(page.contains("<span class=\"flag\">outcome not reported</span>"));
    assert!(page.contains("· outcome not reported ·"));
    assert!(!page.contains(" failed\""), "not drawn as a failure");
}

/// The log line made without a summary says what the summary's says:
/// dropped actions counted, concurrent ones named, the trace id at the end.
#[test]
fn the_summary_line_alone_is_the_summarys_first_line() {
    use std::time::{Duration, Instant};
    use timeline_core::TraceContext;

    let timeline = Timeline::builder().max_actions(4).build();
    timeline.set_trace_context(TraceContext::new_trace(true));
    let transaction = timeline.start_nested("SQL-main", "transaction").unwrap();
    timeline.start("SQL-main", "SELECT 1").unwrap().finish();
    transaction.finish();
    let open = timeline.start("HTTP-get", "/slow").unwrap();
    timeline.record("SQL-main", "SELECT 2", Instant::now(), Duration::ZERO);
    timeline.record("SQL-main", "SELECT 3", Instant::now(), Duration::ZERO);
    drop(open);
    let line = timeline.summary_line();
    let summary = timeline.summary();
    assert_eq!(
        line.action_count(),
        4,
        "3 stored besides the nesting one, 1 dropped"
    );
    assert_eq!(line.concurrent_count(), 1);
    assert_eq!(line.trace_id(), timeline.trace_id());
    assert_eq!(
        (line.action_count(), line.concurrent_count()),
        (summary.action_count(), summary.concurrent_count())
    );
    let shown = line.to_string();
    assert!(
        shown.starts_with("4 queries/external actions issued in "),
        "{shown}"
    );
    assert!(shown.contains(" (1 concurrent), trace "), "{shown}");
    let first_line = summary.to_string();
    assert_eq!(
        shown.split(" seconds").next(),
        first_line.split(" seconds").next()
    );
    assert_eq!(timeline.snapshot().summary_line().action_count(), 4);
}
