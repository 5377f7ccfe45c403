//! Processes that bind an address themselves and hold the socket (tests/clients/holder.py),
//! or hold one the test bound ([`share_with`]): the other programs a restarted daemon may find
//! on its addresses.

use std::fs;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use serde::Deserialize;

use super::{EXIT_TIMEOUT, Proc, TestEnv, User, wait_until};

/// The holder script, written into each test's directory like client.py.
const HOLDER_PY: &str = include_str!("../clients/holder.py");

/// A running holder.py, killed on drop.
pub struct Holder {
    /// The process (its stdout said it holds the socket).
    pub proc: Proc,
    /// What it reported.
    pub held: Held,
}

/// The JSON line holder.py prints once it holds its socket.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Held {
    /// Its pid.
    pub pid: u32,
    /// Its effective uid after any `drop=`.
    pub uid: u32,
    /// The socket's inode.
    pub inode: u64,
}

impl TestEnv {
    /// Runs holder.py as `user`: it binds `proto` (`tcp` or `udp`) `host`:`port` itself with
    /// `options` (`reuseport`, `dual`, `drop=UID`), and holds it until the test ends.
    pub fn hold(&self, user: User, proto: &str, host: &str, port: u16, options: &[&str]) -> Holder {
        let script = self.path().join("holder.py");
        if !script.exists() {
            fs::write(&script, HOLDER_PY).unwrap();
            fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
        }
        let port = port.to_string();
        let mut args = vec![proto, host, &port];
        args.extend_from_slice(options);
        let cmd = self.python_command(user, &script, &args);
        let mut proc = Proc::spawn(cmd, &format!("holder.py as {}", user.name));
        let line = proc.next_line(EXIT_TIMEOUT);
        let held = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("holder.py said {line:?}: {e}\n{}", proc.report()));
        Holder { proc, held }
    }
}

/// `sleep 120` as `user`, holding the test's socket `fd` as its fd 3 (as a worker holds its
/// root master's listening socket), once it runs as `user`: returned when its /proc shows it
/// holding the socket.
pub fn share_with(user: User, fd: BorrowedFd<'_>) -> Proc {
    let fd = fd.as_raw_fd();
    let inode = fs::metadata(format!("/proc/self/fd/{fd}")).unwrap().ino();
    let mut cmd = Command::new("/bin/sleep");
    cmd.arg("120");
    super::inherit_fd(&mut cmd, fd, 3);
    user.apply(&mut cmd);
    let holder = Proc::spawn(cmd, &format!("sleep as {}, holding a socket", user.name));
    let holds = || super::socket_inodes(holder.pid()).contains(&inode);
    assert!(wait_until(EXIT_TIMEOUT, holds), "{}", holder.report());
    holder
}
