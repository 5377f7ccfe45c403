//! What `client.py` reports, as the client saw it: a [`Probe`] (the payload, the reason of a
//! denial and every socket received, [`FdInfo`]) and the tally of a run of fetches
//! ([`Grants`]).

use serde::Deserialize;

/// The JSON line printed by `client.py probe` / `comm`.
#[derive(Debug, Deserialize)]
pub struct Probe {
    /// The client's pid (what the daemon should log as `pid=`).
    pub pid: u32,
    /// errno of a failed connect (e.g. EACCES from the socket file's mode).
    pub connect_errno: Option<i32>,
    /// Every payload byte received.
    pub payload: Vec<u8>,
    /// The text after a deny's 0 byte.
    pub reason: Option<String>,
    /// The sockets received, in order.
    pub fds: Vec<FdInfo>,
}

/// One socket received by a client.
#[derive(Debug, Deserialize)]
pub struct FdInfo {
    /// `AF_INET` or `AF_INET6`.
    pub family: String,
    /// `SOCK_STREAM` or `SOCK_DGRAM`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Local address and port.
    pub addr: (String, u16),
    /// SO_ACCEPTCONN.
    pub listening: bool,
    /// IPV6_V6ONLY (None for IPv4).
    pub v6only: Option<bool>,
    /// FD_CLOEXEC on the client's side.
    pub cloexec: bool,
    /// The socket's inode number.
    pub inode: u64,
    /// Its SO_COOKIE, unique to it until the next boot.
    pub cookie: u64,
}

impl Probe {
    /// Asserts a grant of `n` fds: payload `[n]`, `n` sockets, no reason.
    pub fn assert_granted(&self, n: usize) -> &Self {
        assert!(
            self.connect_errno.is_none()
                && self.payload == [n as u8]
                && self.fds.len() == n
                && self.reason.is_none(),
            "expected a grant of {n} fds, got {self:#?}"
        );
        self
    }

    /// The inode numbers of the sockets received, in order: the same inode is the same
    /// socket, wherever it was passed.
    pub fn inodes(&self) -> Vec<u64> {
        self.fds.iter().map(|f| f.inode).collect()
    }

    /// Asserts a deny from the daemon: connected, payload 0 + a non-empty UTF-8 reason, no fds.
    pub fn assert_denied(&self) -> &Self {
        assert!(
            self.connect_errno.is_none()
                && self.payload.first() == Some(&0)
                && self.reason.as_deref().is_some_and(|r| !r.is_empty())
                && self.fds.is_empty(),
            "expected a deny from the daemon, got {self:#?}"
        );
        self
    }
}

/// The JSON line printed by `client.py grants`: how many of its fetches were granted and
/// denied.
#[derive(Debug, Deserialize)]
pub struct Grants {
    /// Fetches answered with a grant.
    pub granted: u64,
    /// Fetches answered with a denial.
    pub denied: u64,
}
