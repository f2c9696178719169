//! The load generator: keep-alive HTTP/1.1 connections over loopback, each
//! sending its next request as soon as the last response has been read, for
//! a warm-up and then a measured window; and the server's CPU time and
//! memory, read from `/proc`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::header::HOST;
use hyper_util::rt::TokioIo;

/// One load run against one page.
#[derive(Clone, Debug)]
pub(crate) struct LoadConfig {
    pub(crate) addr: SocketAddr,
    pub(crate) path: String,
    pub(crate) connections: usize,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    /// A bound on requests per run, warm-up included; reaching it before
    /// the window closes is an error, since the window would be wrong.
    pub(crate) max_requests: u64,
    /// The server's process, for its CPU time over the window.
    pub(crate) server_pid: Option<u32>,
}

/// What a load run measured.
#[derive(Clone, Debug)]
pub(crate) struct LoadResult {
    /// Responses completed, warm-up included.
    pub(crate) total: u64,
    /// Responses completed inside the measured window.
    pub(crate) completed: u64,
    /// The measured window, between the two CPU readings.
    pub(crate) window: Duration,
    /// Latencies of the window's responses, µs, sorted.
    pub(crate) latencies_us: Vec<u32>,
    /// The server's user + system CPU time over the window.
    pub(crate) server_cpu: Option<Duration>,
    /// Times the server's threads went to sleep over the window.
    pub(crate) server_switches: Option<u64>,
    /// Responses that were not 2xx.
    pub(crate) errors: u64,
}

impl LoadResult {
    pub(crate) fn throughput(&self) -> f64 {
        self.completed as f64 / self.window.as_secs_f64()
    }

    pub(crate) fn percentile_us(&self, p: f64) -> f64 {
        percentile(&self.latencies_us, p)
    }

    /// The server's voluntary context switches per request in the window.
    pub(crate) fn switches_per_request(&self) -> Option<f64> {
        let switches = self.server_switches?;
        (self.completed > 0).then(|| switches as f64 / self.completed as f64)
    }

    /// Server CPU per request in the window, µs.
    pub(crate) fn cpu_per_request_us(&self) -> Option<f64> {
        let cpu = self.server_cpu?;
        (self.completed > 0).then(|| cpu.as_secs_f64() * 1e6 / self.completed as f64)
    }
}

/// The `p`-quantile (0..=1) of sorted values, by nearest rank.
fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

type Sample = (Instant, u32);

/// Runs the load on a single-threaded runtime of its own, on the calling
/// thread (pinned by the caller), and returns when every connection has
/// stopped.
pub(crate) fn run(config: &LoadConfig) -> io::Result<LoadResult> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(config))
}

async fn run_async(config: &LoadConfig) -> io::Result<LoadResult> {
    let start = tokio::time::Instant::now();
    let window_start = start + config.warmup;
    let window_end = window_start + config.duration;
    let issued = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));

    let mut connections = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        let (addr, path, max) = (config.addr, config.path.clone(), config.max_requests);
        let (issued, errors) = (Arc::clone(&issued), Arc::clone(&errors));
        connections.push(tokio::spawn(async move {
            connection(addr, path, window_end.into_std(), max, issued, errors).await
        }));
    }

    // The window is bounded by the CPU readings themselves, so requests
    // and CPU time are counted over the same interval.
    let pid = config.server_pid;
    tokio::time::sleep_until(window_start).await;
    let (opened, cpu_before) = (Instant::now(), pid.map(server_cpu).transpose()?);
    let switches_before = pid.map(voluntary_switches).transpose()?;
    tokio::time::sleep_until(window_end).await;
    let (closed, cpu_after) = (Instant::now(), pid.map(server_cpu).transpose()?);
    let switches_after = pid.map(voluntary_switches).transpose()?;

    let mut samples: Vec<Sample> = Vec::new();
    for connection in connections {
        samples.extend(connection.await.map_err(io::Error::other)??);
    }
    if issued.load(Ordering::Relaxed) >= config.max_requests {
        return Err(io::Error::other(format!(
            "the bound of {} requests was reached before the window closed: raise --max-requests",
            config.max_requests
        )));
    }
    let mut latencies_us: Vec<u32> = samples
        .iter()
        .filter(|(ended, _)| (opened..=closed).contains(ended))
        .map(|&(_, latency)| latency)
        .collect();
    latencies_us.sort_unstable();
    Ok(LoadResult {
        total: samples.len() as u64,
        completed: latencies_us.len() as u64,
        window: closed - opened,
        latencies_us,
        server_cpu: cpu_before
            .zip(cpu_after)
            .map(|(before, after)| after.saturating_sub(before)),
        server_switches: switches_before
            .zip(switches_after)
            .map(|(before, after)| after.saturating_sub(before)),
        errors: errors.load(Ordering::Relaxed),
    })
}

/// One keep-alive connection: a request, its whole response, the next.
async fn connection(
    addr: SocketAddr,
    path: String,
    stop: Instant,
    max_requests: u64,
    issued: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
) -> io::Result<Vec<Sample>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(io::Error::other)?;
    let driver = tokio::spawn(driver);
    let host = addr.to_string();
    let mut samples = Vec::new();
    while Instant::now() < stop && issued.fetch_add(1, Ordering::Relaxed) < max_requests {
        let request = Request::get(path.as_str())
            .header(HOST, host.as_str())
            .body(Empty::<Bytes>::new())
            .map_err(io::Error::other)?;
        let started = Instant::now();
        let response = sender
            .send_request(request)
            .await
            .map_err(io::Error::other)?;
        let ok = response.status().is_success();
        response
            .into_body()
            .collect()
            .await
            .map_err(io::Error::other)?;
        let ended = Instant::now();
        if !ok {
            errors.fetch_add(1, Ordering::Relaxed);
        }
        let latency = (ended - started).as_micros().min(u128::from(u32::MAX)) as u32;
        samples.push((ended, latency));
    }
    drop(sender);
    driver.abort();
    Ok(samples)
}

/// The clock ticks per second that `/proc/<pid>/stat` counts in.
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|ticks| ticks.trim().parse().ok())
            .filter(|&ticks| ticks > 0)
            // USER_HZ: what Linux reports on every architecture it runs on.
            .unwrap_or(100)
    })
}

/// A process's user + system CPU time so far, every thread included.
pub(crate) fn server_cpu(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces and parentheses: fields count from
    // the last ')'. utime and stime are fields 14 and 15 of the line.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |index: usize| -> io::Result<u64> {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .ok_or_else(|| io::Error::other(format!("unexpected /proc/{pid}/stat: {stat}")))
    };
    let ticks = tick(11)? + tick(12)?;
    Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

/// How often a process's threads have gone to sleep (blocked, waiting to
/// be woken) so far: every hand-over between threads costs one. Threads
/// that have exited no longer count; a server's threads live as long as it.
/// A count, not a time, so other tenants of the machine do not move it.
pub(crate) fn voluntary_switches(pid: u32) -> io::Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        // A thread that ended since the listing: nothing to count.
        let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
            continue;
        };
        total += status
            .lines()
            .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|value| value.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}

/// A process's peak resident set (`VmHWM`), in KiB.
pub(crate) fn peak_rss_kib(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("no VmHWM in /proc/{pid}/status")))
}

/// A response to one request on a connection of its own.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// Header names lower-cased, values as sent.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// One GET with `Connection: close`, for checks and control requests
/// outside the measured load.
pub(crate) fn get(addr: SocketAddr, path: &str, timeout: Duration) -> io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other(format!("no response head: {raw:?}")))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other(format!("no status line: {head:?}")))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&values, 1.0), 100.0);
        assert_eq!(percentile(&[7], 0.99), 7.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn reads_this_process_from_proc() {
        let pid = std::process::id();
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {
            std::hint::black_box(spin.elapsed());
        }
        assert!(server_cpu(pid).unwrap() > Duration::ZERO);
        let before = voluntary_switches(pid).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(voluntary_switches(pid).unwrap() > before);
        assert!(peak_rss_kib(pid).unwrap() > 100);
    }
}
