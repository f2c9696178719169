//! Starting a server process and cleaning up after it: whatever happens to
//! the driver, a `ServerProcess` is killed and its directory removed when
//! it goes out of scope.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::app::Mode;

/// How long a server may take to open its database and listen.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A directory under the system's temporary directory, removed on drop
/// unless kept.
pub(crate) struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    pub(crate) fn new(label: &str, keep: bool) -> io::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "served-bench-{label}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir { path, keep })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A `served-bench server` child process, killed on drop.
pub(crate) struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

/// A loopback port that was free a moment ago.
fn free_port() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

impl ServerProcess {
    /// Starts the server in `dir` (its database and its stdout/stderr
    /// logs), pinned to `cpu` with `taskset` if given, and waits until it
    /// accepts connections.
    pub(crate) fn start(
        mode: Mode,
        dir: &Path,
        sink: Option<&str>,
        cpu: Option<usize>,
    ) -> io::Result<ServerProcess> {
        let exe = std::env::current_exe()?;
        std::fs::create_dir_all(dir)?;
        let addr = free_port()?;
        let mut command = match cpu {
            // taskset execs the server: the child's pid is the server's.
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpu.to_string()).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        command
            .arg("server")
            .args(["--mode", mode.name(), "--listen", &addr.to_string()])
            .arg("--dir")
            .arg(dir);
        if let Some(sink) = sink {
            command.args(["--sink", sink]);
        }
        command
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("stdout.log"))?)
            .stderr(File::create(dir.join("stderr.log"))?);
        let mut server = ServerProcess {
            child: command.spawn()?,
            addr,
            dir: dir.to_path_buf(),
        };
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "the {} server exited ({status}): {}",
                    mode.name(),
                    server.stderr()
                )));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(server);
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(io::Error::other(format!(
                    "the {} server did not listen on {addr} within {START_TIMEOUT:?}: {}",
                    mode.name(),
                    server.stderr()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote to stdout: its log lines.
    pub(crate) fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join("stdout.log")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
