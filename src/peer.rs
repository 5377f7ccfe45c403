//! Who is on the other end of a client connection, as the kernel reports it.

use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::socket::{getsockopt, sockopt};
use nix::unistd::{Gid, Uid};

use crate::sys;

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
    /// Its supplementary groups.
    pub groups: Vec<Gid>,
}

impl Peer {
    /// Reads the credentials of the process connected to `conn`.
    pub fn of(conn: BorrowedFd<'_>) -> std::io::Result<Peer> {
        let cred = getsockopt(&conn.as_fd(), sockopt::PeerCredentials)?;
        let groups = sys::peer_groups(conn)?;
        Ok(Peer {
            pid: cred.pid(),
            uid: Uid::from_raw(cred.uid()),
            gid: Gid::from_raw(cred.gid()),
            groups,
        })
    }

    /// The peer's process name (/proc/PID/comm) as raw bytes, for the audit line only: the
    /// peer chooses it, so it is escaped before it is logged and never used to decide.
    /// The pid may have been reused since the connect; see SECURITY.md.
    pub fn comm(&self) -> Option<Vec<u8>> {
        if self.pid <= 0 {
            return None;
        }
        let mut name = std::fs::read(format!("/proc/{}/comm", self.pid)).ok()?;
        if name.last() == Some(&b'\n') {
            name.pop();
        }
        Some(name)
    }
}
