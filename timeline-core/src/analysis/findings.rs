//! Findings: the repeated statements of a request worth a look, told apart
//! by kind (*similar*: the same statement with other values, the N+1
//! signal; *duplicate*: the very same statement again), with their call
//! sites, filtered by thresholds, an allow-list and pauses.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use super::finding::{Finding, FindingKind, FindingSite};
use super::normalise::hides_values;
use super::rules::FindingRules;
use super::statement::RepeatedStatement;
use crate::{Action, CallSite, Snapshot};

/// The rules and the pauses of a timeline, for [`find`].
pub(super) struct Detection<'a> {
    rules: &'a FindingRules,
    paused: &'a [(u64, u64)],
}

impl<'a> Detection<'a> {
    /// What findings of `snapshot` are made with: its rules and its pauses.
    pub(crate) fn of(snapshot: &'a Snapshot) -> Self {
        Detection {
            rules: snapshot.finding_rules(),
            paused: snapshot.paused(),
        }
    }

    fn is_paused(&self, action: &Action) -> bool {
        let start = action.start_ns();
        let at = self.paused.partition_point(|(from, _)| *from <= start);
        at > 0 && self.paused.get(at - 1).is_some_and(|(_, end)| start < *end)
    }
}

/// Where `action` was issued from: known at its start, or for a bridge's
/// action the first application frame of its backtrace.
fn call_site(action: &Action) -> Option<CallSite<'_>> {
    action.call_site()
}

/// The findings among `groups` (every statement of the summary, repeated or
/// not), given which group each non-nesting action belongs to.
pub(crate) fn find(
    groups: &[RepeatedStatement],
    members: &[(usize, &Action)],
    detection: &Detection<'_>,
) -> Vec<Finding> {
    find_with(groups, members, detection, call_site)
}

/// [`find`], with where each action was issued from given by `call_site`.
fn find_with<'a>(
    groups: &[RepeatedStatement],
    members: &[(usize, &'a Action)],
    detection: &Detection<'_>,
    call_site: impl Fn(&'a Action) -> Option<CallSite<'a>>,
) -> Vec<Finding> {
    let rules = detection.rules;
    let mut tallies: Vec<Tally<'a>> = groups.iter().map(|_| Tally::default()).collect();
    for &(group, action) in members {
        let site = call_site(action);
        if detection.is_paused(action)
            || rules.leaves_out_category(action.category())
            || site.as_ref().is_some_and(|s| rules.allows_call_site(s))
        {
            continue;
        }
        let Some(tally) = tallies.get_mut(group) else {
            continue;
        };
        tally.count += 1;
        tally.total += action.duration_or_elapsed();
        match tally.first {
            None => {
                tally.first = Some(action.detail());
                tally.identical = true;
            }
            Some(first) => tally.identical &= first == action.detail(),
        }
        if let Some(site) = site {
            let entry = tally.sites.entry(site).or_insert((0, None));
            entry.0 += 1;
            if let Some(location) = action.stored_call_site() {
                entry.1 = Some(location.file());
            }
        }
    }

    let mut findings: Vec<Finding> = Vec::new();
    for (group, tally) in groups.iter().zip(tallies) {
        let Some(example) = tally.first else {
            continue;
        };
        if tally.count < rules.repeats_needed()
            || tally.total < rules.total_needed()
            || rules.allows_statement(&group.statement)
        {
            continue;
        }
        let kind = if tally.identical && !hides_values(example) {
            FindingKind::Duplicate
        } else {
            FindingKind::Similar
        };
        let mut call_sites: Vec<FindingSite> = tally
            .sites
            .into_iter()
            .map(|(site, (count, static_file))| FindingSite {
                file: match static_file {
                    Some(file) => Cow::Borrowed(file),
                    None => Cow::Owned(site.file().to_owned()),
                },
                line: site.line(),
                column: site.column(),
                function: site.function().map(Box::from),
                count,
            })
            .collect();
        call_sites.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.call_site().cmp(&b.call_site()))
        });
        findings.push(Finding {
            kind,
            repeated: RepeatedStatement {
                category: group.category.clone(),
                statement: group.statement.clone(),
                count: tally.count,
                total: tally.total,
                example: example.to_owned(),
            },
            call_sites,
        });
    }
    if rules.has_predicates() {
        findings.retain(|finding| !rules.allowed_by_predicates(finding));
    }
    findings.sort_by(|a, b| {
        b.total()
            .cmp(&a.total())
            .then_with(|| b.count().cmp(&a.count()))
            .then_with(|| a.statement().cmp(b.statement()))
    });
    findings
}

#[derive(Default)]
struct Tally<'a> {
    count: u64,
    total: Duration,
    first: Option<&'a str>,
    identical: bool,
    /// Per call site, how many actions, and its file as a `'static` string
    /// when the site was known at the start (no copy needed).
    sites: HashMap<CallSite<'a>, (u64, Option<&'static str>)>,
}

#[cfg(test)]
mod tests {
    use std::panic::Location;
    use std::time::{Duration, Instant};

    use super::{FindingKind, FindingRules, find_with};
    use crate::CallSite;
    use crate::analysis::normalise::normalise;
    use crate::analysis::statement::RepeatedStatement;
    use crate::{Action, Timeline};

    fn run(timeline: &Timeline, details: &[&str]) {
        for detail in details {
            timeline
                .start("SQL-main", (*detail).to_owned())
                .unwrap()
                .finish();
        }
    }

    #[test]
    fn other_values_are_similar_and_the_same_values_duplicate() {
        let timeline = Timeline::new();
        run(
            &timeline,
            &[
                "SELECT * FROM bug WHERE id = 1",
                "SELECT * FROM bug WHERE id = 2",
                "SELECT * FROM config",
                "SELECT * FROM config",
                // The values are bound by the driver: they may differ.
                "SELECT * FROM person WHERE id = $1",
                "SELECT * FROM person WHERE id = $1",
                // diesel shows its binds: these are the same values.
                "SELECT * FROM tag WHERE id = ? -- binds: [3]",
                "SELECT * FROM tag WHERE id = ? -- binds: [3]",
                // Some of the same values among others: similar.
                "SELECT * FROM team WHERE id = 1",
                "SELECT * FROM team WHERE id = 1",
                "SELECT * FROM team WHERE id = 2",
                "SELECT * FROM once",
            ],
        );
        let summary = timeline.summary();
        let mut kinds: Vec<(&str, FindingKind, u64)> = summary
            .findings()
            .iter()
            .map(|f| (f.statement(), f.kind(), f.count()))
            .collect();
        kinds.sort_by_key(|(statement, _, _)| *statement);
        assert_eq!(
            kinds,
            [
                ("SELECT * FROM bug WHERE id = ?", FindingKind::Similar, 2),
                ("SELECT * FROM config", FindingKind::Duplicate, 2),
                (
                    "SELECT * FROM person WHERE id = $1",
                    FindingKind::Similar,
                    2
                ),
                ("SELECT * FROM tag WHERE id = ?", FindingKind::Duplicate, 2),
                ("SELECT * FROM team WHERE id = ?", FindingKind::Similar, 3),
            ]
        );
        let team = summary
            .findings()
            .iter()
            .find(|f| f.statement().contains("team"))
            .unwrap();
        assert_eq!(team.example(), "SELECT * FROM team WHERE id = 1");
        assert!(!team.call_sites().is_empty());
        assert!(
            team.call_sites()
                .iter()
                .all(|site| site.call_site().file() == file!())
        );
    }

    #[test]
    fn thresholds_leave_out_the_few_and_the_fast() {
        let rules = FindingRules::new()
            .min_repeats(3)
            .min_total(Duration::from_millis(10));
        let timeline = Timeline::builder().finding_rules(rules).build();
        let now = Instant::now();
        let record = |detail: String, ms: u64| {
            timeline.record("SQL-main", detail, now, Duration::from_millis(ms));
        };
        for id in 0..2 {
            record(format!("SELECT * FROM few WHERE id = {id}"), 20);
        }
        for id in 0..5 {
            record(format!("SELECT * FROM fast WHERE id = {id}"), 1);
        }
        for id in 0..3 {
            record(format!("SELECT * FROM slow WHERE id = {id}"), 4);
        }
        let summary = timeline.summary();
        let found: Vec<&str> = summary.findings().iter().map(|f| f.statement()).collect();
        assert_eq!(found, ["SELECT * FROM slow WHERE id = ?"]);
        assert_eq!(summary.findings()[0].total(), Duration::from_millis(12));
        assert_eq!(summary.repeated_statements().len(), 3, "the list is whole");
    }

    #[test]
    fn allowed_statements_are_matched_once_normalised() {
        let rules = FindingRules::new()
            .allow_statement("from SETTINGS where key='a'")
            .allow_statement("  ");
        let timeline = Timeline::builder().finding_rules(rules).build();
        run(
            &timeline,
            &[
                "SELECT value FROM settings WHERE key = 'theme'",
                "SELECT value FROM settings WHERE key = 'locale'",
                "SELECT * FROM bug WHERE id = 1",
                "SELECT * FROM bug WHERE id = 2",
            ],
        );
        let summary = timeline.summary();
        assert_eq!(summary.findings().len(), 1);
        assert_eq!(
            summary.findings()[0].statement(),
            "SELECT * FROM bug WHERE id = ?"
        );
    }

    #[test]
    fn a_pause_leaves_out_what_starts_during_it() {
        let timeline = Timeline::new();
        run(&timeline, &["SELECT * FROM a WHERE id = 1"]);
        let pause = timeline.pause_findings();
        run(&timeline, &["SELECT * FROM a WHERE id = 2"]);
        timeline.without_findings(|| {
            run(
                &timeline,
                &[
                    "SELECT * FROM b WHERE id = 1",
                    "SELECT * FROM b WHERE id = 2",
                ],
            );
        });
        // Still paused: the outer guard holds.
        run(&timeline, &["SELECT * FROM b WHERE id = 3"]);
        drop(pause);
        run(
            &timeline,
            &[
                "SELECT * FROM c WHERE id = 1",
                "SELECT * FROM c WHERE id = 2",
            ],
        );
        let summary = timeline.summary();
        let found: Vec<(&str, u64)> = summary
            .findings()
            .iter()
            .map(|f| (f.statement(), f.count()))
            .collect();
        assert_eq!(found, [("SELECT * FROM c WHERE id = ?", 2)]);
        assert_eq!(timeline.len(), 7, "paused actions are still recorded");
    }

    #[test]
    fn a_pause_ends_when_its_closure_panics() {
        let timeline = Timeline::new();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            timeline.without_findings(|| panic!("in the paused block"))
        }));
        assert!(result.is_err());
        run(
            &timeline,
            &[
                "SELECT * FROM c WHERE id = 1",
                "SELECT * FROM c WHERE id = 2",
            ],
        );
        assert_eq!(timeline.summary().findings().len(), 1);
    }

    #[test]
    fn a_panicking_predicate_keeps_the_finding() {
        let rules = FindingRules::new().allow_if(|_| panic!("a broken predicate"));
        let timeline = Timeline::builder().finding_rules(rules).build();
        run(
            &timeline,
            &[
                "SELECT * FROM a WHERE id = 1",
                "SELECT * FROM a WHERE id = 2",
            ],
        );
        assert_eq!(timeline.summary().findings().len(), 1);
        // And the next summary on this thread runs predicates again.
        assert_eq!(timeline.summary().findings().len(), 1);
    }

    #[test]
    fn a_predicate_may_use_the_timeline_without_deadlock_or_recursion() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let calls = Arc::new(AtomicUsize::new(0));
        let slot: Arc<std::sync::OnceLock<Timeline>> = Arc::default();
        let rules = FindingRules::new().allow_if({
            let calls = Arc::clone(&calls);
            let slot = Arc::clone(&slot);
            move |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                let Some(timeline) = slot.get() else {
                    return false;
                };
                // Records (the lock is free) and summarises (no recursion).
                timeline.record("log", "predicate ran", Instant::now(), Duration::ZERO);
                let inner = timeline.summary();
                !inner.findings().is_empty()
            }
        });
        let timeline = Timeline::builder().finding_rules(rules).build();
        let _ = slot.set(timeline.clone());
        run(
            &timeline,
            &[
                "SELECT * FROM a WHERE id = 1",
                "SELECT * FROM a WHERE id = 2",
            ],
        );
        assert!(timeline.summary().findings().is_empty(), "allowed");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "not called recursively");
        assert_eq!(timeline.len(), 3);
    }

    #[test]
    fn call_sites_group_within_a_finding_and_allowed_paths_leave_out_theirs() {
        #[track_caller]
        fn here() -> &'static Location<'static> {
            Location::caller()
        }
        let first = here();
        let second = here();
        let timeline = Timeline::new();
        run(
            &timeline,
            &[
                "SELECT * FROM a WHERE id = 1",
                "SELECT * FROM a WHERE id = 2",
                "SELECT * FROM a WHERE id = 3",
            ],
        );
        let actions = timeline.actions();
        let group = RepeatedStatement {
            category: "SQL-main".to_owned(),
            statement: normalise(actions[0].detail()),
            count: 3,
            total: Duration::ZERO,
            example: actions[0].detail().to_owned(),
        };
        let members: Vec<(usize, &Action)> = actions.iter().map(|a| (0, a)).collect();
        let site_of = |action: &Action| {
            Some(CallSite::from(if action.detail().ends_with('1') {
                second
            } else {
                first
            }))
        };

        let rules = FindingRules::new();
        let detection = super::Detection {
            rules: &rules,
            paused: &[],
        };
        let found = find_with(std::slice::from_ref(&group), &members, &detection, site_of);
        let sites: Vec<(u32, u64)> = found[0]
            .call_sites()
            .iter()
            .map(|s| (s.call_site().line(), s.count()))
            .collect();
        assert_eq!(sites, [(first.line(), 2), (second.line(), 1)]);

        let rules = FindingRules::new().allow_call_site(first.file());
        let detection = super::Detection {
            rules: &rules,
            paused: &[],
        };
        let found = find_with(std::slice::from_ref(&group), &members, &detection, site_of);
        assert!(found.is_empty(), "one action left, below min_repeats");
    }

    #[test]
    fn rules_floor_repeats_at_two() {
        let timeline = Timeline::builder()
            .finding_rules(FindingRules::new().min_repeats(0))
            .build();
        run(&timeline, &["SELECT 1", "SELECT 2 FROM t"]);
        assert!(timeline.summary().findings().is_empty());
    }
}
