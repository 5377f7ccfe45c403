//! The grant protocol (docs/PROTOCOL.md). A client connects to `<socket_dir>/<name>.sock`
//! and sends nothing. The daemon answers with exactly one message and closes:
//!
//! * grant: payload one byte `N` (1..=255) and `SCM_RIGHTS` carrying the binding's `N`
//!   sockets in configuration order (with one socket this is what Python's
//!   `multiprocessing.reduction.send_handle` sends);
//! * denial: payload byte `0` followed by a short UTF-8 reason, and no descriptors.
//!
//! This module is the sending side; the receiving side lives in the `portbinder-client`
//! crate, so applications do not depend on the daemon.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

use portbinder_client::protocol::{MAX_FDS, MAX_REASON};

/// Flags for every answer: never block on a client that does not read, and never raise
/// SIGPIPE for one that has gone.
const SEND_FLAGS: MsgFlags = MsgFlags::MSG_DONTWAIT.union(MsgFlags::MSG_NOSIGNAL);

/// Sends a grant of `fds` (1..=255 of them) on a connected client socket.
pub fn send_grant(conn: BorrowedFd<'_>, fds: &[RawFd]) -> nix::Result<()> {
    debug_assert!((1..=MAX_FDS).contains(&fds.len()));
    let count = [fds.len() as u8];
    let iov = [IoSlice::new(&count)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    sendmsg::<()>(conn.as_raw_fd(), &iov, &cmsg, SEND_FLAGS, None).map(drop)
}

/// Sends a denial with `reason` (cut to [`MAX_REASON`] bytes at a character boundary).
pub fn send_denial(conn: BorrowedFd<'_>, reason: &str) -> nix::Result<()> {
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(end + 1);
    payload.push(0);
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    sendmsg::<()>(
        conn.as_raw_fd(),
        &[IoSlice::new(&payload)],
        &[],
        SEND_FLAGS,
        None,
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use portbinder_client::protocol::{Answer, ProtocolError, ReceiveError, receive};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn grant_and_denial_round_trip() {
        let (a, b) = UnixStream::pair().unwrap();
        let (x, y) = UnixStream::pair().unwrap();
        send_grant(a.as_fd(), &[x.as_raw_fd(), y.as_raw_fd()]).unwrap();
        match receive(b.as_fd()).unwrap() {
            Answer::Granted(fds) => assert_eq!(fds.len(), 2),
            other => panic!("{other:?}"),
        }
        send_denial(a.as_fd(), &"é".repeat(300)).unwrap();
        match receive(b.as_fd()).unwrap() {
            Answer::Denied(reason) => assert_eq!(reason, "é".repeat(200)),
            other => panic!("{other:?}"),
        }
        drop(a);
        assert!(matches!(
            receive(b.as_fd()),
            Err(ReceiveError::Protocol(ProtocolError::Empty))
        ));
    }
}
