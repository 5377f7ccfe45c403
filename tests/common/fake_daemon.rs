//! A daemon that breaks the protocol, for the clients' error paths (exit 8): it listens on a
//! socket file anyone may connect to, and answers each client by announcing 2 sockets and
//! sending 1.

use std::io::IoSlice;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::thread::{self, JoinHandle};

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

/// Listens on `path` (mode 0666) and answers `clients` connections wrongly, then returns.
pub fn announcing_2_sending_1(path: &Path, clients: usize) -> JoinHandle<()> {
    let listener = UnixListener::bind(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
    thread::spawn(move || {
        for _ in 0..clients {
            let (conn, _) = listener.accept().unwrap();
            let one = [conn.as_raw_fd()];
            sendmsg::<()>(
                conn.as_raw_fd(),
                &[IoSlice::new(&[2])],
                &[ControlMessage::ScmRights(&one)],
                MsgFlags::empty(),
                None,
            )
            .unwrap();
        }
    })
}
