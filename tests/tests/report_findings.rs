//! Findings on real pages of the example bug tracker: the N+1 page is a
//! similar finding, a page loaded twice is a duplicate, and the rules and
//! pauses leave out what they should, in the summary, the report and the
//! assertions built on them.

use std::panic::{self, AssertUnwindSafe};

use serde_json::Value;
use timeline_core::{FindingKind, FindingRules, Timeline, testing};
use timeline_examples::bugs;
use timeline_tests::bugs::database;

fn fails(f: impl FnOnce()) -> bool {
    panic::catch_unwind(AssertUnwindSafe(f)).is_err()
}

#[test]
fn the_n_plus_one_page_is_one_similar_finding_in_the_summary_and_the_report() {
    let path = database("findings", "similar");
    let (page, timeline) = testing::run(|| {
        let conn = bugs::connect(&path).unwrap();
        bugs::product_page_n_plus_one(&conn, 1)
    });
    let bugs_listed = page.unwrap().lines().count() as u64;

    let summary = timeline.summary();
    let findings = summary.findings();
    assert_eq!(findings.len(), 1, "{summary:#}");
    assert_eq!(findings[0].kind(), FindingKind::Similar);
    assert_eq!(findings[0].count(), bugs_listed);
    assert_eq!(
        findings[0].statement(),
        "SELECT name, email FROM person WHERE id = ?"
    );
    assert!(
        findings[0]
            .example()
            .starts_with("SELECT name, email FROM person WHERE id = ")
    );
    let breakdown = format!("{summary:#}");
    assert!(
        breakdown.contains("Findings (N+1 candidates):"),
        "{breakdown}"
    );
    assert!(breakdown.contains("similar"), "{breakdown}");

    let report: Value = serde_json::to_value(timeline.report()).unwrap();
    let finding = &report["summary"]["findings"][0];
    assert_eq!(finding["kind"], "similar");
    assert_eq!(finding["count"].as_u64(), Some(bugs_listed));
    assert!(finding["call_sites"].is_array());
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_page_loaded_twice_is_a_duplicate_finding() {
    let path = database("findings", "duplicate");
    let (_, timeline) = testing::run(|| {
        let conn = bugs::connect(&path).unwrap();
        bugs::product_page(&conn, 1).unwrap();
        bugs::product_page(&conn, 1).unwrap();
    });
    let summary = timeline.summary();
    let kinds: Vec<(FindingKind, u64)> = summary
        .findings()
        .iter()
        .map(|f| (f.kind(), f.count()))
        .collect();
    assert_eq!(kinds, [(FindingKind::Duplicate, 2)], "{summary:#}");
    assert!(format!("{summary:#}").contains("duplicate"));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_paused_loop_passes_the_repeat_assertion_but_stays_on_the_timeline() {
    let path = database("findings", "paused");
    let (_, timeline) = testing::run(|| {
        let conn = bugs::connect(&path).unwrap();
        let timeline = timeline_core::current().unwrap();
        timeline.without_findings(|| bugs::product_page_n_plus_one(&conn, 1).unwrap())
    });
    testing::assert_max_repeats(&timeline, 1);
    assert!(timeline.summary().findings().is_empty());
    assert!(timeline.summary().repeated_statements()[0].count() > 1);

    // The same page, not paused, fails it.
    let (_, timeline) = testing::run(|| {
        let conn = bugs::connect(&path).unwrap();
        bugs::product_page_n_plus_one(&conn, 1).unwrap()
    });
    assert!(fails(|| testing::assert_max_repeats(&timeline, 1)));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn an_allowed_statement_and_a_threshold_pass_the_repeat_assertion() {
    let path = database("findings", "allowed");
    let n_plus_one = |builder| {
        testing::run_with(builder, || {
            let conn = bugs::connect(&path).unwrap();
            bugs::product_page_n_plus_one(&conn, 1).unwrap()
        })
        .1
    };
    let allowed = n_plus_one(Timeline::builder().finding_rules(
        FindingRules::new().allow_statement("select name, email from person where id = 0"),
    ));
    testing::assert_max_repeats(&allowed, 1);

    let high =
        n_plus_one(Timeline::builder().finding_rules(FindingRules::new().min_repeats(1_000)));
    testing::assert_max_repeats(&high, 1);

    let other = n_plus_one(
        Timeline::builder().finding_rules(FindingRules::new().allow_statement("FROM product")),
    );
    assert!(fails(|| testing::assert_max_repeats(&other, 1)));
    std::fs::remove_file(path).unwrap();
}
