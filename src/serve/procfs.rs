//! What /proc and a pidfd tell about a process, for the start-up (recovery's holders, the
//! drop's read-back) and for the serve loop (a peer's name): one reader of each.

use std::os::fd::BorrowedFd;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// The process name of `pid` (/proc/PID/comm without its newline), chosen by the process;
/// `None` if unreadable. Valid for a pinned process only if [`still_running`] holds after.
pub fn comm(pid: i32) -> Option<Vec<u8>> {
    let mut name = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
    if name.last() == Some(&b'\n') {
        name.pop();
    }
    Some(name)
}

/// Whether the process behind `pidfd` has not exited: a pidfd becomes readable when its
/// process exits (and its pid may be reused once it is reaped). Any error counts as exited.
pub fn still_running(pidfd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(pidfd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0))
}

/// The value of the line `key:` of a /proc/PID/status text, split at whitespace.
pub fn status_field<'s>(status: &'s str, key: &str) -> Option<Vec<&'s str>> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.split_whitespace().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_is_found_by_its_whole_key() {
        let status = "Name:\tx\nUid:\t1\t2\t3\t4\nUidx:\t9\nGroups:\t\n";
        assert_eq!(status_field(status, "Uid"), Some(vec!["1", "2", "3", "4"]));
        assert_eq!(status_field(status, "Groups"), Some(vec![]));
        assert_eq!(status_field(status, "Gid"), None);
        assert_eq!(
            comm(std::process::id() as i32).map(|n| n.is_empty()),
            Some(false)
        );
    }
}
