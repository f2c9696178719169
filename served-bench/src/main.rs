//! What timeline costs a served request: one axum + sqlx service (a SQLite
//! file, a pool of four) with a one-query page and an N+1 page (21
//! statements), under a keep-alive load over loopback, in four modes of
//! instrumentation — the same application code in each. See BENCHMARKS.md.
//!
//! ```text
//! served-bench [--rounds 5] [--duration 2] [--warmup 0.5] [--connections 16]
//!              [--modes fmt,readme,all,otel] [--pages one-query,N+1]
//!              [--server-cpu 0] [--client-cpu 1] [--no-pin] [--keep]
//!              [--max-requests 5000000]
//!     the benchmark: every mode and page in alternation, a fresh server each
//!     run; prints a Markdown table
//! served-bench server --mode MODE --listen ADDR --dir DIR [--sink URL]
//!     one server, until killed
//! served-bench load --addr ADDR --path PATH [--connections 16] [--warmup 0.5]
//!              [--duration 2] [--server-pid PID]
//!     the load generator alone, against any server
//! served-bench self-test
//!     every mode answers both pages, with its instrumentation working
//! served-bench sink [--seconds 600]
//!     the OTLP/HTTP sink alone: prints its endpoint (for `server --sink`),
//!     then what it received each second, and stops after --seconds
//! ```
//!
//! For profiling one mode by hand (perf is Debian's `linux-perf`):
//!
//! ```sh
//! served-bench sink &      # prints http://127.0.0.1:PORT/v1/traces
//! taskset -c 0 served-bench server --mode all --listen 127.0.0.1:3001 --dir /tmp/x --sink URL &
//! taskset -c 1 served-bench load --addr 127.0.0.1:3001 --path /n-plus-one --duration 10 --server-pid PID &
//! perf record -e cpu-clock -p PID -- sleep 5
//! ```

mod app;
mod driver;
mod load;
mod selftest;
mod server;
mod sink;

use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use app::{Mode, Page, ServerArgs};
use driver::DriverConfig;
use load::LoadConfig;

/// `--name value` options, taken one by one; what is left is an error.
struct Options(Vec<String>);

impl Options {
    fn flag(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|arg| arg != name);
        self.0.len() != before
    }

    fn value(&mut self, name: &str) -> Result<Option<String>, String> {
        let Some(at) = self.0.iter().position(|arg| arg == name) else {
            return Ok(None);
        };
        if at + 1 >= self.0.len() {
            return Err(format!("{name} needs a value"));
        }
        let value = self.0.remove(at + 1);
        self.0.remove(at);
        Ok(Some(value))
    }

    fn parsed<T: FromStr>(&mut self, name: &str) -> Result<Option<T>, String> {
        self.value(name)?
            .map(|value| {
                value
                    .parse()
                    .map_err(|_| format!("{name}: cannot read {value:?}"))
            })
            .transpose()
    }

    fn seconds(&mut self, name: &str) -> Result<Option<Duration>, String> {
        self.parsed::<f64>(name)?
            .map(|secs| Duration::try_from_secs_f64(secs).map_err(|e| format!("{name}: {e}")))
            .transpose()
    }

    fn finish(self) -> Result<(), String> {
        match self.0.first() {
            None => Ok(()),
            Some(arg) => Err(format!(
                "unexpected argument {arg:?}; see the usage in src/main.rs"
            )),
        }
    }
}

fn list<T>(value: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    value
        .split(',')
        .map(|name| parse(name.trim()).ok_or_else(|| format!("unknown name {name:?}")))
        .collect()
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let command = if args.first().is_some_and(|arg| !arg.starts_with("--")) {
        args.remove(0)
    } else {
        String::new()
    };
    let shown = std::iter::once("served-bench")
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let options = Options(args);
    let outcome = match command.as_str() {
        "" => bench(options, &shown),
        "server" => server(options),
        "load" => load_only(options),
        "sink" => sink_only(options),
        "self-test" => options
            .finish()
            .map_err(Into::into)
            .and_then(|()| selftest::run()),
        other => {
            Err(format!("unknown command {other:?}: server, load, sink, self-test or none").into())
        }
    };
    if let Err(error) = outcome {
        eprintln!("served-bench: {error}");
        std::process::exit(1);
    }
}

fn bench(mut options: Options, shown: &str) -> Result<(), Box<dyn Error>> {
    let mut config = DriverConfig::default();
    if let Some(rounds) = options.parsed("--rounds")? {
        config.rounds = rounds;
    }
    if let Some(duration) = options.seconds("--duration")? {
        config.duration = duration;
    }
    if let Some(warmup) = options.seconds("--warmup")? {
        config.warmup = warmup;
    }
    if let Some(connections) = options.parsed("--connections")? {
        config.connections = connections;
    }
    if let Some(modes) = options.value("--modes")? {
        config.modes = list(&modes, Mode::parse)?;
    }
    if let Some(pages) = options.value("--pages")? {
        config.pages = list(&pages, Page::parse)?;
    }
    if let Some(cpu) = options.parsed("--server-cpu")? {
        config.server_cpu = cpu;
    }
    if let Some(cpu) = options.parsed("--client-cpu")? {
        config.client_cpu = cpu;
    }
    if let Some(max) = options.parsed("--max-requests")? {
        config.max_requests = max;
    }
    config.pin = !options.flag("--no-pin");
    config.keep = options.flag("--keep");
    options.finish()?;
    if config.rounds == 0 || config.connections == 0 || config.duration.is_zero() {
        return Err("--rounds, --connections and --duration must be above zero".into());
    }
    driver::run(&config, shown)
}

fn server(mut options: Options) -> Result<(), Box<dyn Error>> {
    let mode = options.value("--mode")?.ok_or("--mode is required")?;
    let mode = Mode::parse(&mode).ok_or_else(|| format!("unknown mode {mode:?}"))?;
    let listen: SocketAddr = options
        .parsed("--listen")?
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let dir: PathBuf = options.value("--dir")?.ok_or("--dir is required")?.into();
    let sink = options.value("--sink")?;
    options.finish()?;
    app::serve(ServerArgs {
        mode,
        listen,
        dir,
        sink,
    })
}

fn load_only(mut options: Options) -> Result<(), Box<dyn Error>> {
    let addr = options.parsed("--addr")?.ok_or("--addr is required")?;
    let path = options.value("--path")?.ok_or("--path is required")?;
    let config = LoadConfig {
        addr,
        path,
        connections: options.parsed("--connections")?.unwrap_or(16),
        warmup: options
            .seconds("--warmup")?
            .unwrap_or(Duration::from_millis(500)),
        duration: options
            .seconds("--duration")?
            .unwrap_or(Duration::from_secs(2)),
        max_requests: options.parsed("--max-requests")?.unwrap_or(5_000_000),
        server_pid: options.parsed("--server-pid")?,
    };
    options.finish()?;
    let result = load::run(&config)?;
    println!(
        "{:.0} req/s, p50 {:.0} µs, p99 {:.0} µs, {} responses in the window ({} in all), {} errors{}{}",
        result.throughput(),
        result.percentile_us(0.5),
        result.percentile_us(0.99),
        result.completed,
        result.total,
        result.errors,
        result
            .cpu_per_request_us()
            .map_or(String::new(), |cpu| format!(
                ", server CPU {cpu:.1} µs/request"
            )),
        result
            .switches_per_request()
            .map_or(String::new(), |switches| format!(
                ", {switches:.1} thread sleeps/request"
            )),
    );
    Ok(())
}

fn sink_only(mut options: Options) -> Result<(), Box<dyn Error>> {
    let seconds: u64 = options.parsed("--seconds")?.unwrap_or(600);
    options.finish()?;
    let sink = sink::Sink::start()?;
    println!("{}", sink.endpoint());
    let mut last = sink.received();
    for _ in 0..seconds {
        std::thread::sleep(Duration::from_secs(1));
        let now = sink.received();
        let got = now - last;
        if got.requests > 0 {
            println!(
                "{} exports, {} bytes, {} spans, {} events",
                got.requests, got.bytes, got.spans, got.events
            );
        }
        last = now;
    }
    Ok(())
}
