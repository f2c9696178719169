//! A child process under a deadline: a hang shows as a failed test, not as
//! a test run that never ends.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Waits for `child` to exit, looking every `every`, for at most `limit`:
/// its exit status, or `None` after killing and reaping it when it ran
/// past `limit`.
///
/// # Panics
///
/// When the operating system cannot tell whether `child` exited.
///
/// ```
/// use std::process::Command;
/// use std::time::Duration;
/// use timeline_tests::process::wait_or_kill;
///
/// let mut quick = Command::new("true").spawn().unwrap();
/// let status = wait_or_kill(&mut quick, Duration::from_secs(60), Duration::from_millis(10));
/// assert!(status.unwrap().success());
///
/// let mut hung = Command::new("sleep").arg("60").spawn().unwrap();
/// let status = wait_or_kill(&mut hung, Duration::from_millis(50), Duration::from_millis(10));
/// assert!(status.is_none());
/// ```
pub fn wait_or_kill(child: &mut Child, limit: Duration, every: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(every);
    }
}
