#!/usr/bin/env python3
"""Prints the BENCHMARKS.md tables from criterion's results.

Run after `cargo bench -p timeline-core --bench action --bench report`:
    python3 timeline-core/benches/table.py [CRITERION_DIR ...]
With several result directories (copies of target/criterion from repeated
runs), each figure is the median of the runs' medians: on a shared VM a
single run can be off by a third. Per-action figures are divided by the
actions per iteration (1,000); ratios are against two raw time-stamp-counter reads
(the floor every x86_64 CPU has) and two std clock reads of the same run(s).
"""
import json
import pathlib
import statistics
import sys

ROOTS = [pathlib.Path(p) for p in sys.argv[1:]] or [
    pathlib.Path(__file__).resolve().parents[2] / "target" / "criterion"
]
ACTIONS = 1_000


def median_ns(group, bench):
    values = []
    for root in ROOTS:
        path = root / group / bench / "new" / "estimates.json"
        try:
            values.append(json.loads(path.read_text())["median"]["point_estimate"])
        except FileNotFoundError:
            sys.exit(f"no results for {group}/{bench} in {root}: run the benches first")
    return statistics.median(values)


ACTION_ROWS = [
    ("floor", "two_raw_tsc_reads", "two raw `rdtsc` reads (the floor)"),
    ("floor", "two_std_instant_now", "two `Instant::now()`"),
    ("floor", "thread_local_lookup", "one thread-local read"),
    ("floor", "plain_call", "a plain function call"),
    ("floor", "two_std_reads_mutex_vec_push", "two std reads + `Mutex<Vec>` push via a thread-local"),
    ("timeline", "start_drop_held", "**timeline**: `start` + drop on a held timeline, static strs, incl. `actions()`"),
    ("timeline", "hand_written_guard_current", "**timeline**: hand-written guard on `current()`, looked up once"),
    ("timeline", "hand_written_lookup_per_call", "**timeline**: hand-written guard, `current()` looked up per call"),
    ("timeline", "timed_current", "**timeline**: `#[timed]` call, timeline current"),
    ("timeline", "timed_no_timeline", "**timeline**: `#[timed]` call, no current timeline"),
    ("timeline", "start_drop_dynamic_detail", "**timeline**: `start` + drop, `format!` detail"),
    ("breakdown", "start_drop_no_readout", "timeline: `start` + drop without reading out"),
    ("breakdown", "start_drop_not_stored", "timeline: `start` + drop, nothing stored (`max_actions(0)`)"),
    ("peers", "tracing_instrument_storing_layer", "`tracing` `#[instrument]` + registry + storing layer"),
    ("peers", "tracing_no_subscriber", "`tracing` `#[instrument]`, no subscriber"),
    ("peers", "fastrace_trace_flush_per_request", "`fastrace` `#[trace]`, flushed per request"),
    ("peers", "fastrace_trace_background_collector", "`fastrace` `#[trace]`, background collector"),
]


CLOCK_ROWS = [
    ("two_rdtsc", "`rdtsc` (the floor)"),
    ("two_lfence_rdtsc", "`lfence; rdtsc`"),
    ("two_rdtscp", "`rdtscp`"),
    ("two_timeline_clock_reads", "**timeline**'s clock (`rdtsc`, scaled to ns)"),
    ("two_quanta_raw", "`quanta::Clock::raw`"),
    ("two_quanta_now", "`quanta::Clock::now`"),
    ("two_fastant_now", "`fastant::Instant::now`"),
    ("two_std_instant_now", "`std::time::Instant::now`"),
]


def clock_table():
    """The clock comparison, if `cargo bench --bench clock` has run."""
    if not all((root / "clock").is_dir() for root in ROOTS):
        return
    floor = median_ns("clock", "two_rdtsc") / ACTIONS
    print()
    print("| two reads of | ns | × two `rdtsc` |")
    print("|---|---:|---:|")
    for bench, label in CLOCK_ROWS:
        ns = median_ns("clock", bench) / ACTIONS
        print(f"| {label} | {ns:.1f} | {ns / floor:.2f} |")


def main():
    tsc = median_ns("floor", "two_raw_tsc_reads") / ACTIONS
    std = median_ns("floor", "two_std_instant_now") / ACTIONS
    print("| case | ns/action | × two TSC reads | × two std clock reads |")
    print("|---|---:|---:|---:|")
    for group, bench, label in ACTION_ROWS:
        ns = median_ns(group, bench) / ACTIONS
        print(f"| {label} | {ns:.1f} | {ns / tsc:.2f} | {ns / std:.2f} |")
    one = median_ns("scaling", "own_timeline_per_thread/1") / ACTIONS
    two = median_ns("scaling", "own_timeline_per_thread/2") / (2 * ACTIONS)
    print()
    print(f"Two threads, each with its own timeline: {one / two:.2f}× the throughput of one.")
    print()
    print("| report over | 1k actions | 10k | 100k | 100k / 1k |")
    print("|---|---:|---:|---:|---:|")
    for bench in ["summary", "report_to_json", "chrome_trace"]:
        times = [median_ns("report", f"{bench}/{n}") for n in (1_000, 10_000, 100_000)]
        cells = " | ".join(f"{t / 1e6:.2f} ms" for t in times)
        print(f"| `{bench}` | {cells} | {times[2] / times[0]:.0f}× |")
    clock_table()


if __name__ == "__main__":
    main()
