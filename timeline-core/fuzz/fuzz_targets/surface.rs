//! Every public output of a timeline, on hostile input.
//!
//! A timeline is built with arbitrary (bounded) limits and a detail filter
//! chosen among a few fixed ones, then driven by arbitrary operations:
//! starts and nested starts with hostile categories and details, guards
//! finished, dropped (also on another thread) or kept open in any order,
//! `record`s from far in the past or future with durations up to
//! `Duration::MAX`. Then every output is checked against the invariants the
//! spec gives: nothing panics, text reports stay on bounded lines free of
//! control characters, the JSON documents parse and agree with the
//! timeline, the `Server-Timing` value is a valid, bounded header with
//! unique metric names, and the counts add up.
//!
//! `SURFACE_SKIP=name,name` skips named checks (see `known`), to keep
//! exploring past a bug already reported.

#![no_main]

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use timeline_core::{ActionGuard, Outcome, Timeline, testing};

/// The longest line any text output may have.
const MAX_LINE_CHARS: usize = 2_000;
/// The largest category or detail built: more than any `max_detail_len`
/// the target sets, or any line a text report may have.
const MAX_TEXT_BYTES: usize = 16_384;
/// Operations per input.
const MAX_OPS: usize = 128;
/// The `Server-Timing` value's bound, as the spec has it.
const MAX_HEADER_BYTES: usize = 2_048;

thread_local! {
    /// Set just before a panic the target means to cause (in a detail
    /// filter, in a `testing` assertion): the panic hook lets it unwind
    /// instead of aborting, as libfuzzer-sys's hook does.
    static EXPECT_PANIC: Cell<bool> = const { Cell::new(false) };
}

fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let fuzzer_hook = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !EXPECT_PANIC.with(|expect| expect.replace(false)) {
                fuzzer_hook(info);
            }
        }));
    });
}

/// Checks skipped with `SURFACE_SKIP`, for bugs already reported.
fn known(check: &str) -> bool {
    static SKIP: OnceLock<HashSet<String>> = OnceLock::new();
    SKIP.get_or_init(|| {
        std::env::var("SURFACE_SKIP")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .contains(check)
}

/// Pieces of text that have broken reports elsewhere, or that look like
/// what reports themselves write.
const CANNED: &[&str] = &[
    "\u{1b}[31m",
    "\u{1b}]0;title\u{7}",
    "\r\n",
    "\n",
    "\r",
    "\t",
    "\0",
    "\u{7f}",
    "\u{85}",
    "\u{2028}",
    "\u{2029}",
    "\u{202e}",
    "\u{feff}",
    "\"",
    "\\",
    "\\u0000",
    "é",
    "×",
    "…",
    "😀",
    " ",
    ",",
    ";",
    "=",
    "total",
    "other (2 categories)",
    "other",
    "SQL-main",
    "SQL main",
    "SQL_main",
    "-start",
    "-stop",
    "SELECT * FROM bug WHERE id = 1",
    "SELECT * FROM bug WHERE id = 2",
    " IN (1, 2, 3)",
    "'it''s'",
    "$1",
    "0x1F",
    "1e10",
];

#[derive(Arbitrary, Debug)]
enum Piece {
    Raw(String),
    Canned(u8),
    Repeat { unit: String, times: u16 },
}

#[derive(Arbitrary, Debug)]
struct Text(Vec<Piece>);

impl Text {
    fn build(&self) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Raw(s) => out.push_str(s),
                Piece::Canned(i) => out.push_str(CANNED[usize::from(*i) % CANNED.len()]),
                Piece::Repeat { unit, times } => {
                    let unit = if unit.is_empty() { "x" } else { unit.as_str() };
                    for _ in 0..*times {
                        if out.len() + unit.len() > MAX_TEXT_BYTES {
                            break;
                        }
                        out.push_str(unit);
                    }
                }
            }
            if out.len() >= MAX_TEXT_BYTES {
                out.truncate(floor_char_boundary(&out, MAX_TEXT_BYTES));
                break;
            }
        }
        out
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Filter {
    Identity,
    /// Returns far more than any `max_detail_len`.
    Huge,
    /// Panics on details of odd length, else identity.
    Panics,
    /// Puts ESC after every character and ends in more controls.
    Controls,
}

impl Filter {
    fn apply(self, detail: &str) -> String {
        match self {
            Filter::Identity => detail.to_owned(),
            Filter::Huge => format!("{detail}{}", "\"\\\u{1b}x".repeat(5_000)),
            Filter::Panics => {
                if detail.len() % 2 == 1 {
                    EXPECT_PANIC.set(true);
                    panic!("detail filter panics on purpose");
                }
                detail.to_owned()
            }
            Filter::Controls => {
                let mut out: String = detail.chars().flat_map(|c| [c, '\u{1b}']).collect();
                out.push_str("\r\n\0\u{7f}\u{85}\u{2028}");
                out
            }
        }
    }

    /// What the timeline should store for `detail`: the filter's result
    /// (or the marker of a panicking filter), cut to `max_len` bytes.
    fn expected(self, detail: &str, max_len: usize) -> String {
        let filtered = match self {
            Filter::Panics if detail.len() % 2 == 1 => "<detail filter panicked>".to_owned(),
            _ => self.apply(detail),
        };
        cut(filtered, max_len)
    }
}

/// The longest category a timeline stores, in bytes.
const MAX_CATEGORY_LEN: usize = 256;

/// How much of the open action's detail an overlap error keeps, in bytes.
const EXCERPT_LEN: usize = 512;

/// The builder's documented cut: at a char boundary, ending in `…`,
/// ellipsis included within `max_len` bytes.
fn cut(detail: String, max_len: usize) -> String {
    if detail.len() <= max_len {
        return detail;
    }
    let keep = floor_char_boundary(&detail, max_len.saturating_sub('…'.len_utf8()));
    let mut out = detail[..keep].to_owned();
    if max_len >= '…'.len_utf8() {
        out.push('…');
    }
    out
}

fn floor_char_boundary(s: &str, index: usize) -> usize {
    if index >= s.len() {
        return s.len();
    }
    (0..=index)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

#[derive(Arbitrary, Debug)]
enum OutcomeChoice {
    Error(Text),
    Panicked,
    Cancelled,
    NotReported,
    Ok,
}

#[derive(Arbitrary, Debug)]
enum At {
    Now,
    Past { secs: u64, nanos: u32 },
    Future { secs: u64, nanos: u32 },
}

#[derive(Arbitrary, Debug)]
enum Dur {
    Zero,
    Max,
    Nanos(u64),
    Micros(u32),
    Secs(u64),
}

impl Dur {
    fn get(&self) -> Duration {
        match *self {
            Dur::Zero => Duration::ZERO,
            Dur::Max => Duration::MAX,
            Dur::Nanos(n) => Duration::from_nanos(n),
            Dur::Micros(n) => Duration::from_micros(u64::from(n)),
            Dur::Secs(n) => Duration::from_secs(n),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Start {
        category: Text,
        detail: Text,
    },
    StartNested {
        category: Text,
        detail: Text,
    },
    /// A `&'static str` category and detail (the no-allocation path).
    StartStatic {
        category: u8,
        detail: u8,
        nested: bool,
    },
    Finish {
        guard: u8,
    },
    FinishWith {
        guard: u8,
        outcome: OutcomeChoice,
    },
    Drop {
        guard: u8,
    },
    DropOnThread {
        guard: u8,
    },
    /// Keep the guard unfinished until all checks are done, as if leaked.
    Leak {
        guard: u8,
    },
    Record {
        category: Text,
        detail: Text,
        at: At,
        duration: Dur,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    max_actions: u8,
    max_detail_len: u16,
    filter: Option<Filter>,
    ops: Vec<Op>,
    /// Index into a few category prefixes, or a prefix of a used category.
    prefix: u8,
    max: u8,
    max_repeats: u8,
}

/// A guard the target holds, and what it knows of its action.
struct Held {
    guard: ActionGuard,
    nested: bool,
    category: String,
    detail: String,
}

fuzz_target!(|input: Input| {
    install_panic_hook();
    run(input);
});

fn run(input: Input) {
    let max_actions = usize::from(input.max_actions) % 65;
    let max_detail_len = usize::from(input.max_detail_len) % 4_097;
    let filter = input.filter;
    let mut builder = Timeline::builder()
        .max_actions(max_actions)
        .max_detail_len(max_detail_len);
    if let Some(filter) = filter {
        builder = builder.detail_filter(move |detail| filter.apply(detail));
    }
    let timeline = builder.build();
    let expected_detail = |detail: &str| match filter {
        Some(filter) => filter.expected(detail, max_detail_len),
        None => cut(detail.to_owned(), max_detail_len),
    };

    let base = Instant::now();
    let mut live: Vec<Held> = Vec::new();
    let mut leaked: Vec<Held> = Vec::new();
    // Accepted actions in order, as (category, expected detail, nested):
    // the first `max_actions` are stored, the rest counted in `dropped()`.
    let mut accepted: Vec<(String, String, bool)> = Vec::new();
    let mut categories_used: Vec<String> = Vec::new();

    for op in input.ops.iter().take(MAX_OPS) {
        match op {
            Op::Start { category, detail } | Op::StartNested { category, detail } => {
                let nested = matches!(op, Op::StartNested { .. });
                let (category, detail) = (category.build(), detail.build());
                start(
                    &timeline,
                    Cow::Owned(category),
                    Cow::Owned(detail),
                    nested,
                    &expected_detail,
                    &mut live,
                    &leaked,
                    &mut accepted,
                );
            }
            Op::StartStatic {
                category,
                detail,
                nested,
            } => {
                let category = CANNED[usize::from(*category) % CANNED.len()];
                let detail = CANNED[usize::from(*detail) % CANNED.len()];
                start(
                    &timeline,
                    Cow::Borrowed(category),
                    Cow::Borrowed(detail),
                    *nested,
                    &expected_detail,
                    &mut live,
                    &leaked,
                    &mut accepted,
                );
            }
            Op::Finish { guard } => {
                if let Some(held) = take(&mut live, *guard) {
                    held.guard.finish();
                }
            }
            Op::FinishWith { guard, outcome } => {
                if let Some(held) = take(&mut live, *guard) {
                    let outcome = match outcome {
                        OutcomeChoice::Ok => Outcome::Ok,
                        OutcomeChoice::Error(text) => Outcome::Error(text.build()),
                        OutcomeChoice::Panicked => Outcome::Panicked,
                        OutcomeChoice::Cancelled => Outcome::Cancelled,
                        OutcomeChoice::NotReported => Outcome::NotReported,
                    };
                    held.guard.finish_with(outcome);
                }
            }
            Op::Drop { guard } => drop(take(&mut live, *guard)),
            Op::DropOnThread { guard } => {
                if let Some(held) = take(&mut live, *guard) {
                    std::thread::spawn(move || drop(held))
                        .join()
                        .expect("dropping a guard on another thread");
                }
            }
            Op::Leak { guard } => {
                if let Some(held) = take(&mut live, *guard) {
                    leaked.push(held);
                }
            }
            Op::Record {
                category,
                detail,
                at,
                duration,
            } => {
                let (category, detail) = (category.build(), detail.build());
                let started = match *at {
                    At::Now => Instant::now(),
                    At::Past { secs, nanos } => base
                        .checked_sub(Duration::new(secs, nanos % 1_000_000_000))
                        .unwrap_or(base),
                    At::Future { secs, nanos } => base
                        .checked_add(Duration::new(secs, nanos % 1_000_000_000))
                        .unwrap_or(base),
                };
                accepted.push((
                    cut(category.clone(), MAX_CATEGORY_LEN),
                    expected_detail(&detail),
                    false,
                ));
                timeline.record(category, detail, started, duration.get());
            }
        }
        if let Some((category, _, _)) = accepted.last()
            && categories_used.last() != Some(category)
            && categories_used.len() < 8
        {
            categories_used.push(category.clone());
        }
    }

    check(
        &timeline,
        &input,
        max_actions,
        max_detail_len,
        &accepted,
        &categories_used,
    );
    // Guards still held finish here, after the checks saw them unfinished.
    drop(live);
    drop(leaked);
}

#[allow(clippy::too_many_arguments)]
fn start(
    timeline: &Timeline,
    category: Cow<'static, str>,
    detail: Cow<'static, str>,
    nested: bool,
    expected_detail: &dyn Fn(&str) -> String,
    live: &mut Vec<Held>,
    leaked: &[Held],
    accepted: &mut Vec<(String, String, bool)>,
) {
    let open = live.iter().chain(leaked).find(|held| !held.nested);
    let result = if nested {
        timeline.start_nested(category.clone(), detail.clone())
    } else {
        timeline.start(category.clone(), detail.clone())
    };
    // Categories are cut to 256 bytes, like details to max_detail_len.
    let (category, detail) = (
        cut(category.into_owned(), MAX_CATEGORY_LEN),
        detail.into_owned(),
    );
    match (result, open) {
        (Ok(guard), None) => {
            let prepared = expected_detail(&detail);
            accepted.push((category.clone(), prepared.clone(), nested));
            live.push(Held {
                guard,
                nested,
                category,
                detail: prepared,
            });
        }
        (Err(error), Some(open)) => {
            assert_eq!(
                error.open_category(),
                open.category,
                "refusal names the open action"
            );
            assert_eq!(
                error.open_detail(),
                cut(open.detail.clone(), EXCERPT_LEN),
                "refusal names the open detail (an excerpt of it)"
            );
            assert_eq!(error.attempted_category(), category);
            assert_eq!(error.attempted_detail(), expected_detail(&detail));
            if !known("error-display") {
                let message = error.to_string();
                assert_no_controls("OverlapError Display", &message, false);
            }
        }
        (Ok(_), Some(open)) => panic!(
            "start of {category:?} accepted while {:?} is unfinished",
            open.category
        ),
        (Err(error), None) => panic!("start refused with nothing unfinished: {error}"),
    }
}

fn take(live: &mut Vec<Held>, index: u8) -> Option<Held> {
    if live.is_empty() {
        None
    } else {
        let index = usize::from(index) % live.len();
        Some(live.remove(index))
    }
}

/// `text` has no control characters (but '\n' where `multiline`), no
/// line longer than [`MAX_LINE_CHARS`].
fn assert_no_controls(what: &str, text: &str, multiline: bool) {
    if let Some(c) = text
        .chars()
        .find(|&c| c.is_control() && !(multiline && c == '\n'))
    {
        panic!("{what} contains the control character {c:?}: {text:?}");
    }
}

fn assert_bounded_lines(what: &str, text: &str) {
    for line in text.split('\n') {
        let chars = line.chars().count();
        assert!(
            chars <= MAX_LINE_CHARS,
            "{what} has a line of {chars} chars: {:?}…",
            line.chars().take(200).collect::<String>()
        );
    }
}

fn check(
    timeline: &Timeline,
    input: &Input,
    max_actions: usize,
    max_detail_len: usize,
    accepted: &[(String, String, bool)],
    categories_used: &[String],
) {
    let actions = timeline.actions();

    // 6. Counts agree with what was accepted: the first max_actions stored,
    // in order, the rest dropped.
    let stored = accepted.len().min(max_actions);
    let dropped = (accepted.len() - stored) as u64;
    assert_eq!(timeline.len(), stored, "len()");
    assert_eq!(actions.len(), stored, "actions().len()");
    assert_eq!(timeline.is_empty(), stored == 0);
    assert_eq!(timeline.dropped(), dropped, "dropped()");
    assert!(timeline.len() <= max_actions);
    let mut want: Vec<(&str, &str, bool)> = accepted[..stored]
        .iter()
        .map(|(c, d, n)| (c.as_str(), d.as_str(), *n))
        .collect();
    let mut got: Vec<(&str, &str, bool)> = actions
        .iter()
        .map(|a| (a.category(), a.detail(), a.is_nested()))
        .collect();
    want.sort_unstable();
    got.sort_unstable();
    assert!(want == got, "stored actions differ from the accepted ones");
    let nested_stored = actions.iter().filter(|a| a.is_nested()).count();
    let finished_nested = actions
        .iter()
        .filter(|a| a.is_nested() && a.duration().is_some())
        .count();
    let concurrent = actions
        .iter()
        .filter(|a| !a.is_nested() && a.is_concurrent())
        .count() as u64;
    for action in &actions {
        assert!(
            action.detail().len() <= max_detail_len,
            "detail over max_detail_len"
        );
        assert!(action.end() >= action.start());
    }
    // Non-nesting actions of the sequence do not overlap.
    let mut end_of_previous = Duration::ZERO;
    for action in actions
        .iter()
        .filter(|a| !a.is_nested() && !a.is_concurrent())
    {
        assert!(
            action.start() >= end_of_previous,
            "sequential actions overlap: {:?} starts at {:?}, before {:?}",
            action.category(),
            action.start(),
            end_of_previous
        );
        end_of_previous = action.end();
    }

    // 2. The summary line is one line; the breakdown is bounded lines.
    let summary = timeline.summary();
    let line = summary.to_string();
    assert!(
        !line.contains('\n'),
        "summary line has a line break: {line:?}"
    );
    assert_no_controls("summary line", &line, false);
    assert_bounded_lines("summary line", &line);
    let expected_count = (stored - nested_stored) as u64 + dropped;
    assert_eq!(
        summary.action_count(),
        expected_count,
        "summary action_count"
    );
    assert_eq!(summary.dropped(), dropped);
    assert_eq!(summary.concurrent_count(), concurrent);
    let breakdown = format!("{summary:#}");
    assert!(breakdown.starts_with(&line), "{{:#}} starts with the line");
    assert_no_controls("summary {:#}", &breakdown, true);
    assert_bounded_lines("summary {:#}", &breakdown);
    for width in [0, 1, 80, 5_000] {
        let waterfall = timeline.waterfall(width);
        assert_no_controls("waterfall", &waterfall, true);
        assert_bounded_lines("waterfall", &waterfall);
        assert_eq!(
            waterfall.lines().count(),
            stored + 1,
            "waterfall: header + a line per action"
        );
    }
    for violation in timeline.violations() {
        if !known("error-display") {
            assert_no_controls("Violation Display", &violation.to_string(), false);
        }
    }

    // 3. The OOPS report: to_json parses, agrees with serde, and carries
    // every category and detail exactly.
    let report = timeline.report();
    let tuples = report.log_tuples();
    assert_eq!(
        tuples.len(),
        stored + finished_nested,
        "a tuple per action, and a -stop per finished nesting one"
    );
    assert_eq!(report.summary().action_count(), expected_count);
    assert_eq!(report.dropped(), dropped);
    let json = report.to_json();
    let parsed: Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("to_json is not JSON ({e}): {json}"));
    let serialized = serde_json::to_value(&report).expect("Report serialises");
    assert!(
        same(&parsed, &serialized),
        "to_json and serde differ:\n{parsed}\n{serialized}"
    );
    let timeline_json = parsed["timeline"].as_array().expect("timeline is a list");
    assert_eq!(timeline_json.len(), tuples.len());
    for (tuple, json) in tuples.iter().zip(timeline_json) {
        assert!(tuple.end_ms >= tuple.start_ms);
        assert!(tuple.detail.len() <= max_detail_len);
        assert_eq!(json[0].as_u64(), Some(tuple.start_ms));
        assert_eq!(json[1].as_u64(), Some(tuple.end_ms));
        assert_eq!(json[2].as_str(), Some(tuple.category.as_str()));
        assert_eq!(json[3].as_str(), Some(tuple.detail.as_str()));
    }
    assert_eq!(parsed["dropped"].as_u64(), Some(dropped));
    assert_eq!(parsed["summary"]["actions"].as_u64(), Some(expected_count));
    let report_line = parsed["summary"]["line"].as_str().expect("summary line");
    assert!(!report_line.contains('\n'));
    assert_no_controls("report summary line", report_line, false);

    // 3b. The richer report: an entry per action, in start order; and the
    // page shows every action it draws as text, never as markup.
    let entries = parsed["actions"].as_array().expect("actions is a list");
    assert_eq!(entries.len(), actions.len(), "an entry per action");
    for (entry, action) in entries.iter().zip(&actions) {
        assert_eq!(entry["category"].as_str(), Some(action.category()));
        assert_eq!(entry["detail"].as_str(), Some(action.detail()));
    }
    let page = report.to_html();
    assert!(
        !page.to_ascii_lowercase().contains("<script"),
        "a script in the page"
    );
    assert!(
        !page
            .chars()
            .any(|c| (c.is_control() && c != '\n' && c != '\t')
                || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')),
        "a control or bidi character reached the page"
    );
    assert_eq!(
        page.matches("<tr class=\"action\"").count(),
        actions.len().min(1_000),
        "a row per drawn action"
    );

    // 4. The Chrome trace: JSON, an "X" event per action with its detail.
    let trace = timeline.to_chrome_trace();
    let trace: Value = serde_json::from_str(&trace)
        .unwrap_or_else(|e| panic!("to_chrome_trace is not JSON ({e}): {trace}"));
    let events = trace["traceEvents"].as_array().expect("traceEvents");
    let complete: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(complete.len(), actions.len(), "an X event per action");
    for (event, action) in complete.iter().zip(&actions) {
        let ts = event["ts"].as_f64().expect("ts is a number");
        let dur = event["dur"].as_f64().expect("dur is a number");
        assert!(ts >= 0.0 && dur >= 0.0, "negative ts/dur: {event}");
        assert_eq!(event["cat"].as_str(), Some(action.category()));
        assert_eq!(event["args"]["detail"].as_str(), Some(action.detail()));
        assert!(event["tid"].as_u64().is_some_and(|tid| tid >= 1));
    }

    // 5. Server-Timing: bounded, a valid header value, unique names.
    let header = timeline.server_timing();
    assert!(
        header.len() <= MAX_HEADER_BYTES,
        "Server-Timing of {} bytes",
        header.len()
    );
    assert!(!header.contains(['\r', '\n']));
    http::HeaderValue::from_str(&header)
        .unwrap_or_else(|e| panic!("Server-Timing is not a header value ({e}): {header:?}"));
    let mut names = HashSet::new();
    for item in split_unquoted(&header, ',') {
        let name = item.split(';').next().unwrap_or("").trim();
        assert!(
            !name.is_empty() && name.bytes().all(is_token_byte),
            "metric name {name:?} is not a token: {header:?}"
        );
        assert!(
            names.insert(name.to_owned()),
            "metric name {name:?} twice: {header:?}"
        );
    }
    assert!(names.contains("total"));

    // 1 and 2. The testing assertions panic exactly when they should, with
    // a message of bounded lines and no controls.
    let prefixes = ["", "SQL", "SQL-main", "memcache", "\u{1b}"];
    let prefix: String = match usize::from(input.prefix) {
        n if n < prefixes.len() => prefixes[n].to_owned(),
        n => categories_used
            .get(n % categories_used.len().max(1))
            .map(|c| c.chars().filter(|c| !c.is_control()).take(40).collect())
            .unwrap_or_default(),
    };
    let max = usize::from(input.max) % 70;
    let matching = actions
        .iter()
        .filter(|a| !a.is_nested() && a.category().starts_with(&prefix))
        .count();
    let should_fail = matching > max || (dropped > 0 && matching as u64 + dropped > max as u64);
    let message = panic_message(|| testing::assert_max_actions(timeline, &prefix, max));
    assert_eq!(
        message.is_some(),
        should_fail,
        "assert_max_actions({prefix:?}, {max})"
    );
    if let Some(message) = message {
        assert!(message.starts_with("expected at most "), "{message}");
        // The prefix is the test author's, not the request's data.
        let listing = message.split_once('\n').map_or("", |(_, rest)| rest);
        assert_no_controls("assert_max_actions message", listing, true);
        assert_bounded_lines("assert_max_actions message", listing);
        assert_eq!(
            listing.lines().count(),
            matching,
            "a line per matching action"
        );
    }
    let max_repeats = u64::from(input.max_repeats % 8);
    let should_fail = summary
        .repeated_statements()
        .iter()
        .any(|s| s.count() > max_repeats);
    let message = panic_message(|| testing::assert_max_repeats(timeline, max_repeats));
    assert_eq!(
        message.is_some(),
        should_fail,
        "assert_max_repeats({max_repeats})"
    );
    if let Some(message) = message {
        assert!(
            message.starts_with("expected no statement issued more than "),
            "{message}"
        );
        assert_no_controls("assert_max_repeats message", &message, true);
        if !known("repeats-message-length") {
            assert_bounded_lines("assert_max_repeats message", &message);
        }
    }
}

/// The message of the panic `f` raises, if it does.
fn panic_message(f: impl FnOnce()) -> Option<String> {
    EXPECT_PANIC.set(true);
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    EXPECT_PANIC.set(false);
    let payload = result.err()?;
    Some(match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => match payload.downcast::<&str>() {
            Ok(message) => (*message).to_owned(),
            Err(_) => panic!("a testing assertion panicked with a non-string payload"),
        },
    })
}

/// JSON values equal, numbers compared by value (`to_json` writes decimal
/// fractions, serde writes `f64`s).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                return x == y;
            }
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => {
                    x == y || (x - y).abs() <= x.abs().max(y.abs()) * 4.0 * f64::EPSILON
                }
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| same(x, y)))
        }
        _ => a == b,
    }
}

/// `text` split at `separator`s outside quoted strings.
fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut quoted, mut escaped, mut from) = (false, false, 0);
    for (at, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            items.push(&text[from..at]);
            from = at + c.len_utf8();
        }
    }
    assert!(!quoted, "unterminated quoted string in {text:?}");
    items.push(&text[from..]);
    items
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
