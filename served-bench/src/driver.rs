//! The driver: every mode and page in alternation over N rounds, a fresh
//! server process per run, the server and the client pinned to separate
//! CPUs; then ratios to `fmt` measured in the same round, as a Markdown
//! table for BENCHMARKS.md.

use std::error::Error;
use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use crate::app::{Mode, Page};
use crate::load::{self, LoadConfig};
use crate::server::{ServerProcess, TempDir};
use crate::sink::Sink;

/// What `served-bench` (the driver) is told.
#[derive(Clone, Debug)]
pub(crate) struct DriverConfig {
    pub(crate) rounds: usize,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    pub(crate) connections: usize,
    pub(crate) modes: Vec<Mode>,
    pub(crate) pages: Vec<Page>,
    pub(crate) server_cpu: usize,
    pub(crate) client_cpu: usize,
    pub(crate) pin: bool,
    pub(crate) keep: bool,
    pub(crate) max_requests: u64,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            rounds: 5,
            warmup: Duration::from_millis(500),
            duration: Duration::from_secs(2),
            connections: 16,
            modes: Mode::EVERY.to_vec(),
            pages: Page::EVERY.to_vec(),
            server_cpu: 0,
            client_cpu: 1,
            pin: true,
            keep: false,
            max_requests: 5_000_000,
        }
    }
}

/// One server process under load.
#[derive(Clone, Debug)]
struct Run {
    round: usize,
    page: Page,
    mode: Mode,
    throughput: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us: Option<f64>,
    switches: Option<f64>,
    rss_kib: u64,
    /// Spans and span events the sink received per request served.
    spans: Option<f64>,
    events: Option<f64>,
    /// Requests `SpanExport` dropped instead of exporting.
    dropped: u64,
}

/// Whether `taskset` (util-linux) can pin processes here.
fn taskset_works() -> bool {
    Command::new("taskset")
        .args(["-c", "0", "true"])
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Pins this process's main thread (and so every thread and child it
/// starts later: the load generator and the sink) to `cpu`.
fn pin_self(cpu: usize) -> Result<(), Box<dyn Error>> {
    let out = Command::new("taskset")
        .args([
            "-p",
            "-c",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "taskset -p -c {cpu}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(())
}

/// The machine, as BENCHMARKS.md names it with every table.
pub(crate) struct Host {
    pub(crate) cpu_model: String,
    pub(crate) cpus: usize,
    pub(crate) clocksource: String,
    pub(crate) commit: String,
}

impl Host {
    pub(crate) fn describe() -> Host {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|line| line.strip_prefix("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let clocksource = std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .map_or_else(|_| "unknown".into(), |source| source.trim().to_string());
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let git = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .ok()
                .filter(|out| out.status.success())
                .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        let commit = match git(&["rev-parse", "--short", "HEAD"]) {
            Some(commit) => match git(&["status", "--porcelain", "--untracked-files=no"]) {
                Some(changes) if !changes.is_empty() => format!("{commit} + changes"),
                _ => commit,
            },
            None => "unknown".into(),
        };
        Host {
            cpu_model,
            cpus,
            clocksource,
            commit,
        }
    }
}

/// Runs every round and prints the report on stdout (progress on stderr).
pub(crate) fn run(config: &DriverConfig, command: &str) -> Result<(), Box<dyn Error>> {
    if !config.modes.contains(&Mode::Fmt) {
        return Err("the modes must include fmt: every ratio is to it".into());
    }
    let host = Host::describe();
    let pinned = config.pin && host.cpus >= 2 && taskset_works();
    if pinned {
        pin_self(config.client_cpu)?;
    } else if config.pin {
        eprintln!(
            "served-bench: not pinning (needs 2 CPUs and taskset from util-linux; {} CPUs here)",
            host.cpus
        );
    }
    let sink = if config.modes.iter().any(|mode| mode.exports()) {
        Some(Sink::start()?)
    } else {
        None
    };
    let dir = TempDir::new("runs", config.keep)?;
    let mut runs = Vec::new();
    let total = config.rounds * config.pages.len() * config.modes.len();
    for round in 0..config.rounds {
        // Each round starts with another mode, so that no mode always
        // follows the same one.
        let mut modes = config.modes.clone();
        let start = round % modes.len();
        modes.rotate_left(start);
        for &page in &config.pages {
            for &mode in &modes {
                let run = run_one(config, &sink, &dir, round, page, mode, pinned)?;
                eprintln!(
                    "[{}/{total}] round {} {:>9} {:>6}: {:>7.0} req/s, p99 {:>6.0} µs, CPU {} µs/request",
                    runs.len() + 1,
                    round + 1,
                    page.name(),
                    mode.name(),
                    run.throughput,
                    run.p99_us,
                    run.cpu_us.map_or("?".into(), |cpu| format!("{cpu:.1}")),
                );
                runs.push(run);
            }
        }
    }
    let malformed = sink.as_ref().map_or(0, Sink::malformed);
    if malformed > 0 {
        eprintln!("served-bench: {malformed} export requests were not valid OTLP protobuf");
    }
    print!("{}", report(config, &host, pinned, command, &runs));
    Ok(())
}

fn run_one(
    config: &DriverConfig,
    sink: &Option<Sink>,
    dir: &TempDir,
    round: usize,
    page: Page,
    mode: Mode,
    pinned: bool,
) -> Result<Run, Box<dyn Error>> {
    let run_dir = dir
        .path()
        .join(format!("{}-{}-{}", round + 1, page.name(), mode.name()));
    let endpoint = sink.as_ref().map(Sink::endpoint);
    let server = ServerProcess::start(
        mode,
        &run_dir,
        endpoint.as_deref().filter(|_| mode.exports()),
        pinned.then_some(config.server_cpu),
    )?;
    let before = sink.as_ref().map(Sink::received);
    let result = load::run(&LoadConfig {
        addr: server.addr(),
        path: page.path().into(),
        connections: config.connections,
        warmup: config.warmup,
        duration: config.duration,
        max_requests: config.max_requests,
        server_pid: Some(server.pid()),
    })?;
    if result.errors > 0 || result.completed == 0 {
        return Err(format!(
            "{} {}: {} of {} responses were errors",
            mode.name(),
            page.name(),
            result.errors,
            result.total
        )
        .into());
    }
    let rss_kib = load::peak_rss_kib(server.pid())?;
    let mut dropped = 0;
    let mut spans = None;
    let mut events = None;
    if let (true, Some(sink), Some(before)) = (mode.exports(), sink, before) {
        // Twice: a request's export is queued as its response ends, and
        // the last ones may reach the queue after the first flush.
        let mut flushed = load::get(server.addr(), "/_bench/flush", Duration::from_secs(60))?;
        if flushed.status == 200 {
            std::thread::sleep(Duration::from_millis(100));
            flushed = load::get(server.addr(), "/_bench/flush", Duration::from_secs(60))?;
        }
        if flushed.status != 200 {
            return Err(format!("{} flush: {}", mode.name(), flushed.body).into());
        }
        dropped = flushed
            .body
            .trim()
            .strip_prefix("dropped ")
            .and_then(|count| count.parse().ok())
            .unwrap_or(0);
        let got = sink.received() - before;
        spans = Some(got.spans as f64 / result.total as f64);
        events = Some(got.events as f64 / result.total as f64);
    }
    Ok(Run {
        round,
        page,
        mode,
        throughput: result.throughput(),
        p50_us: result.percentile_us(0.5),
        p99_us: result.percentile_us(0.99),
        cpu_us: result.cpu_per_request_us(),
        switches: result.switches_per_request(),
        rss_kib,
        spans,
        events,
        dropped,
    })
}

/// Median and range of the values (not NaN).
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

fn spread(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
    let mut values: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    let median = if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    };
    Some(Spread {
        median,
        min: values[0],
        max: values[values.len() - 1],
    })
}

/// "0.64 (0.53–0.85)", or the one value of a single round.
fn ratio_cell(spread: Option<Spread>, decimals: usize) -> String {
    match spread {
        None => "—".into(),
        Some(s) if s.min == s.max => format!("{:.decimals$}", s.median),
        Some(s) => format!(
            "{:.decimals$} ({:.decimals$}–{:.decimals$})",
            s.median, s.min, s.max
        ),
    }
}

fn report(config: &DriverConfig, host: &Host, pinned: bool, command: &str, runs: &[Run]) -> String {
    let find = |round: usize, page: Page, mode: Mode| {
        runs.iter()
            .find(|run| run.round == round && run.page == page && run.mode == mode)
    };
    // Each run's value against fmt's in the same round and page.
    let against_fmt = |page: Page, mode: Mode, value: &dyn Fn(&Run, &Run) -> Option<f64>| {
        spread(
            (0..config.rounds)
                .filter_map(|round| value(find(round, page, mode)?, find(round, page, Mode::Fmt)?)),
        )
    };
    let of_runs = |page: Page, mode: Mode, value: &dyn Fn(&Run) -> Option<f64>| {
        spread((0..config.rounds).filter_map(|round| value(find(round, page, mode)?)))
    };

    let mut out = String::new();
    let _ = writeln!(
        out,
        "### served-bench: {}, {} CPUs, clocksource `{}`\n",
        host.cpu_model, host.cpus, host.clocksource
    );
    let _ = writeln!(
        out,
        "Commit `{}`, `{command}`: {} rounds; in each, every mode and page on a fresh \
         server, {:.1} s warm-up + {:.1} s measured, {} keep-alive connections; {}. \
         Ratios to `fmt` in the same round: median (min–max over rounds).\n",
        host.commit,
        config.rounds,
        config.warmup.as_secs_f64(),
        config.duration.as_secs_f64(),
        config.connections,
        if pinned {
            format!(
                "server pinned to CPU {}, load generator and OTLP sink to CPU {}",
                config.server_cpu, config.client_cpu
            )
        } else {
            "not pinned".into()
        },
    );
    out.push_str(
        "| page | mode | throughput × fmt | p50 × fmt | p99 × fmt | server CPU µs/request | \
         CPU added over fmt, µs/request | thread sleeps/request | peak RSS, MiB | \
         exported spans (events) per request |\n\
         |---|---|---|---|---|---:|---|---:|---:|---|\n",
    );
    for &page in &config.pages {
        for &mode in &config.modes {
            let throughput = against_fmt(page, mode, &|run, fmt| {
                Some(run.throughput / fmt.throughput)
            });
            let p50 = against_fmt(page, mode, &|run, fmt| Some(run.p50_us / fmt.p50_us));
            let p99 = against_fmt(page, mode, &|run, fmt| Some(run.p99_us / fmt.p99_us));
            let cpu = of_runs(page, mode, &|run| run.cpu_us);
            let added = against_fmt(page, mode, &|run, fmt| Some(run.cpu_us? - fmt.cpu_us?));
            let switches = of_runs(page, mode, &|run| run.switches);
            let rss = of_runs(page, mode, &|run| Some(run.rss_kib as f64 / 1024.0));
            let spans = of_runs(page, mode, &|run| run.spans);
            let events = of_runs(page, mode, &|run| run.events);
            let exported = match (spans, events) {
                (Some(spans), Some(events)) => {
                    format!("{:.2} ({:.2})", spans.median, events.median)
                }
                _ => "—".into(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                page.name(),
                mode.name(),
                ratio_cell(throughput, 2),
                ratio_cell(p50, 2),
                ratio_cell(p99, 2),
                cpu.map_or("—".into(), |cpu| format!("{:.1}", cpu.median)),
                if mode == Mode::Fmt {
                    "—".into()
                } else {
                    ratio_cell(added, 1)
                },
                switches.map_or("—".into(), |switches| format!("{:.1}", switches.median)),
                rss.map_or("—".into(), |rss| format!("{:.1}", rss.median)),
                exported,
            );
        }
    }

    // The added CPU of the two pages, split into a fixed part and a part
    // per statement (the pages differ by 20 statements).
    if config.pages.len() == 2 {
        let extra = (Page::NPlusOne.statements() - Page::One.statements()) as f64;
        let mut lines = String::new();
        for &mode in config.modes.iter().filter(|&&mode| mode != Mode::Fmt) {
            let added = |page| {
                against_fmt(page, mode, &|run, fmt| Some(run.cpu_us? - fmt.cpu_us?))
                    .map(|s| s.median)
            };
            if let (Some(one), Some(many)) = (added(Page::One), added(Page::NPlusOne)) {
                let per_statement = (many - one) / extra;
                let fixed = one - per_statement * Page::One.statements() as f64;
                let _ = writeln!(
                    lines,
                    "- `{}`: {fixed:.1} µs fixed + {per_statement:.2} µs per statement",
                    mode.name()
                );
            }
        }
        if !lines.is_empty() {
            out.push_str(
                "\nCPU added per request over `fmt` (medians), as a fixed part and a part \
                 per statement from the two pages:\n\n",
            );
            out.push_str(&lines);
        }
    }
    let dropped: u64 = runs.iter().map(|run| run.dropped).sum();
    if dropped > 0 {
        let _ = writeln!(
            out,
            "\n`SpanExport` dropped {dropped} requests (queue full): `all` exported less than every request."
        );
    }
    let mut scale = Vec::new();
    for &page in &config.pages {
        if let Some(s) = of_runs(page, Mode::Fmt, &|run| Some(run.throughput)) {
            scale.push(format!("{:.0} req/s on the {} page", s.median, page.name()));
        }
    }
    let _ = writeln!(
        out,
        "\nFor scale only: `fmt` served {}.",
        scale.join(" and ")
    );
    out.push_str(
        "\nThread sleeps: voluntary context switches of the server's threads per request, \
         each a hand-over to another thread (sqlx's SQLite worker, an export thread); a \
         count, so other tenants of the machine do not move it.\n",
    );
    out.push_str("\nModes:\n\n");
    for &mode in &config.modes {
        let _ = writeln!(out, "- `{}`: {}", mode.name(), mode.describe());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ranges() {
        let s = spread([3.0, 1.0, 2.0, f64::NAN]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = spread([4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(spread([]).is_none());
        assert_eq!(ratio_cell(spread([0.5, 0.75, 0.7]), 2), "0.70 (0.50–0.75)");
        assert_eq!(ratio_cell(spread([0.5]), 2), "0.50");
    }

    fn run(round: usize, page: Page, mode: Mode, throughput: f64, cpu_us: f64) -> Run {
        Run {
            round,
            page,
            mode,
            throughput,
            p50_us: 100.0,
            p99_us: 200.0,
            cpu_us: Some(cpu_us),
            switches: Some(5.0),
            rss_kib: 10 * 1024,
            spans: None,
            events: None,
            dropped: 0,
        }
    }

    #[test]
    fn the_report_divides_by_fmt_of_the_same_round() {
        let config = DriverConfig {
            rounds: 2,
            modes: vec![Mode::Fmt, Mode::Readme],
            ..DriverConfig::default()
        };
        let host = Host {
            cpu_model: "Test CPU".into(),
            cpus: 2,
            clocksource: "tsc".into(),
            commit: "abc".into(),
        };
        let runs = vec![
            run(0, Page::One, Mode::Fmt, 1000.0, 100.0),
            run(0, Page::One, Mode::Readme, 500.0, 140.0),
            run(1, Page::One, Mode::Fmt, 2000.0, 100.0),
            run(1, Page::One, Mode::Readme, 1600.0, 120.0),
            run(0, Page::NPlusOne, Mode::Fmt, 100.0, 1000.0),
            run(0, Page::NPlusOne, Mode::Readme, 90.0, 1090.0),
            run(1, Page::NPlusOne, Mode::Fmt, 100.0, 1000.0),
            run(1, Page::NPlusOne, Mode::Readme, 90.0, 1070.0),
        ];
        let report = report(&config, &host, true, "served-bench", &runs);
        assert!(
            report.contains("Test CPU, 2 CPUs, clocksource `tsc`"),
            "{report}"
        );
        // 0.5 and 0.8: median 0.65.
        assert!(
            report.contains(
                "| one-query | readme | 0.65 (0.50–0.80) | 1.00 | 1.00 | 130.0 | 30.0 (20.0–40.0) |"
            ),
            "{report}"
        );
        // Added: 30 µs for 1 statement, 80 µs for 21: 2.5 µs per statement.
        assert!(
            report.contains("- `readme`: 27.5 µs fixed + 2.50 µs per statement"),
            "{report}"
        );
    }
}
