//! Bounded waiting: every wait in the suite has a limit, so that a hung daemon or client fails
//! its test with a report instead of holding the whole run until nextest's own timeout.

use std::thread;
use std::time::{Duration, Instant};

/// How long the daemon may take to log `event=ready`.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an expected syslog line may take to arrive.
pub const LOG_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client or a failing daemon may take to exit.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Polls `done` every 10 ms until it returns true or `timeout` passes; returns the last result.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}
