//! W3C's own trace-context test harness, vendored in `tests/w3c-trace-context/`,
//! run at Level 2 and strict level 2 against the example service
//! `timeline_examples::w3c` (axum with the request layer's trace context,
//! reqwest with `TraceContextMiddleware`): every case must pass.
//!
//! The harness is Python with aiohttp. `scripts/test` installs Debian's
//! `python3-aiohttp` when it is missing; `TIMELINE_PYTHON` names another
//! interpreter that has it.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Longer than a run needs (a few seconds): each of the harness's calls has
/// its own timeout of 5 seconds, so a service that never calls back fails
/// case by case, not by this.
const DEADLINE: Duration = Duration::from_secs(300);

fn harness_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("w3c-trace-context")
}

/// The first Python that can import aiohttp: `TIMELINE_PYTHON` if set,
/// else Debian's (`python3` may be a pyenv shim without it), else
/// `python3` from `PATH`.
fn python() -> Result<String, String> {
    let candidates = match std::env::var("TIMELINE_PYTHON") {
        Ok(python) => vec![python],
        Err(_) => vec!["/usr/bin/python3".to_owned(), "python3".to_owned()],
    };
    let has_aiohttp = |python: &str| {
        Command::new(python)
            .args(["-c", "import aiohttp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    candidates
        .iter()
        .find(|python| has_aiohttp(python))
        .cloned()
        .ok_or_else(|| {
            format!(
                "W3C's trace-context harness needs Python 3 with aiohttp, and none of {candidates:?} \
                 has it: run the tests with scripts/test, which installs Debian's python3-aiohttp, \
                 or `apt-get install python3-aiohttp`, or set TIMELINE_PYTHON to a python that has it"
            )
        })
}

/// A loopback port free a moment ago, for the harness's own server.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs the harness against `service` to the end, or kills it at the
/// deadline.
fn run_harness(python: &str, service: SocketAddr) -> Output {
    let port = free_port().to_string();
    let mut child = Command::new(python)
        .arg("test.py")
        .arg(format!("http://{service}{}", timeline_examples::w3c::PATH))
        .current_dir(harness_dir())
        .env("SPEC_LEVEL", "2")
        .env("STRICT_LEVEL", "2")
        .env("HARNESS_HOST", "127.0.0.1")
        .env("HARNESS_PORT", &port)
        .env_remove("HARNESS_DEBUG")
        // Keeps __pycache__ out of the vendored tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {python}: {e}"));
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// A case of the harness and how it ended: `ok`, `FAIL`, `ERROR`,
/// `skipped …`.
#[derive(Debug)]
struct Case {
    name: String,
    outcome: String,
}

/// The cases of unittest's verbose output. A case's line is
/// `test_x (__main__.Suite.test_x)`, followed, when the test has a
/// docstring, by its first line; the outcome ends the last of them after
/// ` ... `.
fn cases(output: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut name: Option<String> = None;
    for line in output.lines() {
        if line.starts_with("test_") && line.contains(" (__main__.") {
            let suite_and_test = line
                .split_once(" (__main__.")
                .and_then(|(_, rest)| rest.split_once(')'))
                .map(|(inside, _)| inside.to_owned());
            name = suite_and_test;
        }
        if let Some((_, outcome)) = line.rsplit_once(" ... ") {
            if let Some(name) = name.take() {
                cases.push(Case {
                    name,
                    outcome: outcome.trim().to_owned(),
                });
            }
        }
    }
    cases
}

/// `N` of unittest's `Ran N tests in …s`.
fn ran(output: &str) -> Option<usize> {
    output.lines().find_map(|line| {
        line.strip_prefix("Ran ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

#[test]
fn w3c_trace_context_harness_passes_at_level_2_strict() {
    let python = python().unwrap_or_else(|why| panic!("{why}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let service = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, timeline_examples::w3c::router()).await });
        address
    });

    let started = Instant::now();
    let output = run_harness(&python, service);
    let took = started.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let cases = cases(&text);
    let list: String = cases
        .iter()
        .map(|case| format!("  {:<70} {}\n", case.name, case.outcome))
        .collect();
    println!("W3C harness ({python}, {took:.1?}):\n{list}");
    let shown = format!("{list}\nthe harness's output ({}):\n{text}", output.status);

    // The run happened: every case it ran is in the list, none skipped.
    let ran = ran(&text).unwrap_or_else(|| panic!("the harness did not run: {shown}"));
    assert!(ran >= 41, "ran {ran} cases, W3C's harness has 41: {shown}");
    assert_eq!(cases.len(), ran, "could not read every case: {shown}");
    let failed: Vec<&Case> = cases.iter().filter(|case| case.outcome != "ok").collect();
    assert!(
        failed.is_empty() && output.status.success(),
        "{} of {ran} W3C harness cases did not pass: {:?}\n{shown}",
        failed.len(),
        failed.iter().map(|case| &case.name).collect::<Vec<_>>()
    );
}

#[test]
fn the_output_reader_finds_each_case_and_its_outcome() {
    let output = "\
STRICT_LEVEL: 2
harness listening on http://127.0.0.1:7777
test_multiple_requests_with_valid_traceparent (__main__.AdvancedTest.test_multiple_requests_with_valid_traceparent)
harness sends a valid traceparent and asks vendor service to callback multiple times ... FAIL
test_propagates_random_flag (__main__.TraceContext2Test.test_propagates_random_flag)
harness sends a request with a traceparent with the random flag set ... ok
test_undocumented (__main__.TraceContextTest.test_undocumented) ... skipped 'strict'

======================================================================
FAIL: test_multiple_requests_with_valid_traceparent (__main__.AdvancedTest.test_multiple_requests_with_valid_traceparent)
----------------------------------------------------------------------
Ran 3 tests in 0.217s

FAILED (failures=1, skipped=1)
";
    let cases = cases(output);
    let read: Vec<(&str, &str)> = cases
        .iter()
        .map(|case| (case.name.as_str(), case.outcome.as_str()))
        .collect();
    assert_eq!(
        read,
        [
            (
                "AdvancedTest.test_multiple_requests_with_valid_traceparent",
                "FAIL"
            ),
            ("TraceContext2Test.test_propagates_random_flag", "ok"),
            ("TraceContextTest.test_undocumented", "skipped 'strict'"),
        ]
    );
    assert_eq!(ran(output), Some(3));
}
