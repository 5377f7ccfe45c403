//! Who is on the other end of a client connection, as the kernel reports it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{getsockopt, sockopt};
use nix::unistd::{Gid, Uid};

use crate::serve::procfs;
use crate::serve::sys;

/// A client's credentials at the time it connected (SO_PEERCRED, SO_PEERGROUPS). Nothing
/// here comes from the client's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its pid in our pid namespace (0 if it is not visible there).
    pub pid: i32,
    /// Its effective uid.
    pub uid: Uid,
    /// Its effective gid.
    pub gid: Gid,
    /// Its supplementary groups (empty until [`Peer::load_groups`]; the serve loop reads
    /// them only when the uid and primary gid do not decide).
    pub groups: Vec<Gid>,
}

impl Peer {
    /// Reads the credentials of the process connected to `conn`.
    pub fn of(conn: BorrowedFd<'_>) -> std::io::Result<Peer> {
        let mut peer = Peer::credentials(conn)?;
        peer.load_groups(conn)?;
        Ok(peer)
    }

    /// Reads pid, uid and gid only (SO_PEERCRED), leaving `groups` empty: enough when the
    /// uid or the primary gid already decides, and one system call less per grant.
    pub fn credentials(conn: BorrowedFd<'_>) -> std::io::Result<Peer> {
        let cred = getsockopt(&conn.as_fd(), sockopt::PeerCredentials)?;
        Ok(Peer {
            pid: cred.pid(),
            uid: Uid::from_raw(cred.uid()),
            gid: Gid::from_raw(cred.gid()),
            groups: Vec::new(),
        })
    }

    /// Reads the supplementary groups (SO_PEERGROUPS) into `groups`.
    pub fn load_groups(&mut self, conn: BorrowedFd<'_>) -> std::io::Result<()> {
        self.groups = sys::peer_groups(conn)?;
        Ok(())
    }
}

/// The connecting process itself, pinned when the connection is accepted so that its name
/// is read without a pid-reuse race where the kernel allows it.
#[derive(Debug)]
pub struct Process {
    pid: i32,
    pin: Pin,
}

#[derive(Debug)]
enum Pin {
    /// A pidfd of the process that connected (SO_PEERPIDFD, Linux 6.5+).
    Pidfd(OwnedFd),
    /// The kernel says the process has already exited: its pid may be reused.
    Gone,
    /// No pidfd (a kernel before 6.5, or none could be made): only the pid.
    PidOnly,
}

/// A peer's process name for the audit line (`comm=` and `comm_verified=`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comm {
    /// The bytes of /proc/PID/comm without the newline (the peer chooses them: escape
    /// before logging, never decide on them); `None` when unknown.
    pub name: Option<Vec<u8>>,
    /// True when the name is proven to be the connecting process's: its pidfd showed it
    /// still running after /proc/PID/comm was read, so PID still named it then.
    pub verified: bool,
}

impl Process {
    /// Pins the process connected to `conn`, whose SO_PEERCRED pid is `pid`. Call it
    /// before answering, while the peer is most likely still there.
    pub fn of(conn: BorrowedFd<'_>, pid: i32) -> Process {
        let pin = match getsockopt(&conn, sockopt::PeerPidfd) {
            Ok(pidfd) => Pin::Pidfd(pidfd),
            Err(Errno::ESRCH) => Pin::Gone,
            Err(_) => Pin::PidOnly,
        };
        Process { pid, pin }
    }

    /// The process's name: verified through the pidfd, unverified without one, unknown
    /// when the process is gone (then the pid may already name another process).
    pub fn comm(&self) -> Comm {
        let unknown = Comm {
            name: None,
            verified: false,
        };
        if self.pid <= 0 || matches!(self.pin, Pin::Gone) {
            return unknown;
        }
        let name = procfs::comm(self.pid);
        match &self.pin {
            Pin::Pidfd(pidfd) if procfs::still_running(pidfd.as_fd()) => Comm {
                verified: name.is_some(),
                name,
            },
            Pin::Pidfd(_) => unknown,
            Pin::PidOnly | Pin::Gone => Comm {
                name,
                verified: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_live_peer_is_named_through_its_pidfd() {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let peer = Peer::of(ours.as_fd()).unwrap();
        assert_eq!(peer.pid, std::process::id() as i32);
        let comm = Process::of(ours.as_fd(), peer.pid).comm();
        let mut expected = std::fs::read(format!("/proc/{}/comm", peer.pid)).unwrap();
        expected.pop();
        assert_eq!(
            comm,
            Comm {
                name: Some(expected),
                verified: true
            }
        );
    }

    #[test]
    fn a_peer_known_to_be_gone_has_no_name() {
        let gone = Process {
            pid: std::process::id() as i32,
            pin: Pin::Gone,
        };
        assert_eq!(
            gone.comm(),
            Comm {
                name: None,
                verified: false
            }
        );
        let invisible = Process {
            pid: 0,
            pin: Pin::PidOnly,
        };
        assert_eq!(invisible.comm().name, None);
    }
}
