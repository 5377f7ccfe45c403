//! A process pinned by a pidfd, so that what start-up reads about it (its descriptors, its
//! credentials, its name) and the descriptor it takes from it are that one process's, even if
//! a pid is reused in between.
//!
//! The pidfd names one process for as long as it is open. Its `Pid:` in
//! `/proc/self/fdinfo/<pidfd>` is that process's pid as this /proc numbers it, so when it
//! equals the pid, `/proc/<pid>/…` is the pinned process at that moment; when the process is
//! still running after the files are read (the pidfd is not readable yet), it was not reaped
//! in between, so its pid named no other process while they were read. A descriptor is taken
//! with pidfd_getfd(2), through the pidfd, never by pid.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::unistd::{Gid, Uid};

use crate::serve::procfs;
use crate::serve::setup::holders::{self, Tables};
use crate::serve::sys;

/// A process's identity as the kernel records it in /proc/PID/status (its effective ids,
/// which the kernel also reports for a peer with SO_PEERCRED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Effective uid.
    pub uid: Uid,
    /// Effective gid.
    pub gid: Gid,
    /// Supplementary groups.
    pub groups: Vec<Gid>,
}

/// A pinned process.
#[derive(Debug)]
pub struct Pinned {
    pid: i32,
    pidfd: OwnedFd,
}

/// Why a process could not be pinned.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// It is gone (exited before the pidfd was made, or exited since).
    #[error("pid {0} has exited")]
    Gone(i32),
    /// pidfd_open(2) failed for another reason (ENOSYS: before Linux 5.3).
    #[error("pidfd_open of pid {pid} failed: {source}")]
    Open {
        /// The pid.
        pid: i32,
        /// The cause.
        source: io::Error,
    },
    /// The pidfd names a process that /proc numbers otherwise (another pid namespace).
    #[error("the pidfd of pid {pid} is pid {shown} in /proc: /proc is another pid namespace's")]
    Elsewhere {
        /// The pid asked for.
        pid: i32,
        /// The pid /proc shows for the pidfd's process.
        shown: i64,
    },
}

impl Pinned {
    /// Pins process `pid` and checks that /proc numbers the pinned process `pid` too.
    pub fn open(pid: i32) -> Result<Pinned, PinError> {
        let pidfd = sys::pidfd_open(pid).map_err(|source| match source.raw_os_error() {
            Some(libc::ESRCH) => PinError::Gone(pid),
            _ => PinError::Open { pid, source },
        })?;
        let fdinfo = fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd()))
            .map_err(|source| PinError::Open { pid, source })?;
        match fdinfo_pid(&fdinfo) {
            Some(shown) if shown == i64::from(pid) => Ok(Pinned { pid, pidfd }),
            Some(-1) => Err(PinError::Gone(pid)),
            Some(shown) => Err(PinError::Elsewhere { pid, shown }),
            None => Err(PinError::Open {
                pid,
                source: io::Error::other("no Pid: line in the pidfd's fdinfo"),
            }),
        }
    }

    /// The pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// What its descriptor `fd` refers to (the readlink of /proc/PID/fd/FD); valid for the
    /// pinned process if [`Pinned::still_running`] holds afterwards.
    pub fn fd_target(&self, fd: RawFd) -> io::Result<PathBuf> {
        fs::read_link(format!("/proc/{}/fd/{fd}", self.pid))
    }

    /// What its descriptor tables (its own and its threads') hold of `inodes`, read afresh
    /// (setup/holders.rs): where a descriptor went when it is no longer at the number first
    /// seen. Valid for the pinned process if [`Pinned::still_running`] holds afterwards.
    pub fn tables(&self, inodes: &BTreeSet<u64>) -> Tables {
        holders::tables(self.pid, inodes)
    }

    /// Its effective uid and gid and supplementary groups (/proc/PID/status); valid for the
    /// pinned process if [`Pinned::still_running`] holds afterwards.
    pub fn credentials(&self) -> io::Result<Credentials> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        parse_status(&status).ok_or_else(|| {
            io::Error::other(format!(
                "/proc/{}/status has no Uid, Gid or Groups line",
                self.pid
            ))
        })
    }

    /// Its process name (/proc/PID/comm without the newline): chosen by the process, for the
    /// audit line only. `None` if unreadable.
    pub fn comm(&self) -> Option<Vec<u8>> {
        procfs::comm(self.pid)
    }

    /// Whether it has not exited: a pidfd becomes readable when its process exits. Any error
    /// counts as exited.
    pub fn still_running(&self) -> bool {
        procfs::still_running(self.pidfd.as_fd())
    }

    /// A duplicate of its descriptor `fd` (pidfd_getfd(2)): whatever that number refers to in
    /// the pinned process now, which the caller must check.
    pub fn take(&self, fd: RawFd) -> io::Result<OwnedFd> {
        sys::pidfd_getfd(self.pidfd.as_fd(), fd)
    }
}

/// The `Pid:` of a pidfd's fdinfo (-1 once the process has exited, 0 if this /proc's pid
/// namespace does not see it).
fn fdinfo_pid(fdinfo: &str) -> Option<i64> {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The effective ids and the groups of a /proc/PID/status text.
pub fn parse_status(status: &str) -> Option<Credentials> {
    // `Uid:` and `Gid:` are real, effective, saved and filesystem ids.
    let effective =
        |key: &str| -> Option<u32> { procfs::status_field(status, key)?.get(1)?.parse().ok() };
    let groups = procfs::status_field(status, "Groups")?
        .into_iter()
        .map(|g| g.parse().map(Gid::from_raw))
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    Some(Credentials {
        uid: Uid::from_raw(effective("Uid")?),
        gid: Gid::from_raw(effective("Gid")?),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn status_gives_the_effective_ids_and_the_groups() {
        let status =
            "Name:\tpython3\nUid:\t1000\t33\t33\t33\nGid:\t1000\t33\t33\t33\nGroups:\t33 50 \n";
        assert_eq!(
            parse_status(status),
            Some(Credentials {
                uid: Uid::from_raw(33),
                gid: Gid::from_raw(33),
                groups: vec![Gid::from_raw(33), Gid::from_raw(50)],
            })
        );
        let none = parse_status("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\n").unwrap();
        assert!(none.groups.is_empty());
        assert_eq!(parse_status("Uid:\t0\nGid:\t0\t0\nGroups:\n"), None);
    }

    #[test]
    fn fdinfo_pid_lines() {
        assert_eq!(
            fdinfo_pid("pos:\t0\nflags:\t02000002\nPid:\t4711\nNSpid:\t4711\n"),
            Some(4711)
        );
        assert_eq!(fdinfo_pid("Pid:\t-1\n"), Some(-1));
        assert_eq!(fdinfo_pid("pos:\t0\n"), None);
    }

    #[test]
    fn a_pinned_process_gives_its_ids_and_a_duplicate_of_its_socket() {
        let me = std::process::id() as i32;
        let pinned = Pinned::open(me).unwrap();
        assert!(pinned.still_running());
        let creds = pinned.credentials().unwrap();
        assert_eq!(creds.uid, Uid::effective());
        assert_eq!(creds.gid, Gid::effective());

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = listener.as_raw_fd();
        let link = pinned.fd_target(fd).unwrap();
        let inode = fs::metadata(format!("/proc/self/fd/{fd}")).unwrap().ino();
        assert_eq!(link.to_str().unwrap(), format!("socket:[{inode}]"));
        let copy = pinned.take(fd).unwrap();
        assert_ne!(copy.as_raw_fd(), fd);
        assert_eq!(nix::sys::stat::fstat(&copy).unwrap().st_ino, inode);
    }

    #[test]
    fn a_process_that_is_gone_cannot_be_pinned() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert!(matches!(Pinned::open(pid), Err(PinError::Gone(p)) if p == pid));
    }
}
