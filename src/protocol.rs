//! The grant protocol (docs/PROTOCOL.md). A client connects to `<socket_dir>/<name>.sock`
//! and sends nothing. The daemon answers with exactly one message and closes:
//!
//! * grant: payload one byte `N` (1..=255) and `SCM_RIGHTS` carrying the binding's `N`
//!   sockets in configuration order (with one socket this is what Python's
//!   `multiprocessing.reduction.send_handle` sends);
//! * denial: payload byte `0` followed by a short UTF-8 reason, and no descriptors.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// The most descriptors one grant carries.
pub const MAX_FDS: usize = 255;
/// The longest denial reason sent, in bytes.
pub const MAX_REASON: usize = 400;

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

/// The daemon's answer, as a client receives it.
#[derive(Debug)]
pub enum Answer {
    /// The binding's sockets, in configuration order, close-on-exec.
    Granted(Vec<OwnedFd>),
    /// The daemon's reason for refusing.
    Denied(String),
}

/// An answer that does not follow the protocol.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The daemon closed the connection without answering.
    #[error("the daemon closed the connection without an answer")]
    Empty,
    /// More descriptors were sent than the receive buffer holds; the kernel dropped some.
    #[error("the answer's descriptors were truncated (MSG_CTRUNC)")]
    Truncated,
    /// The count byte does not match the descriptors received.
    #[error("the answer announces {announced} descriptors but carries {received}")]
    CountMismatch {
        /// The payload's count byte.
        announced: u8,
        /// The descriptors in SCM_RIGHTS.
        received: usize,
    },
    /// A grant carried extra payload bytes, or a denial carried descriptors.
    #[error("malformed answer: {0}")]
    Malformed(&'static str),
}

/// Decodes an answer from its payload, the descriptors received with it (already owned,
/// so they are closed on every error path) and whether the control data was truncated.
pub fn decode(payload: &[u8], fds: Vec<OwnedFd>, truncated: bool) -> Result<Answer, ProtocolError> {
    if truncated {
        return Err(ProtocolError::Truncated);
    }
    match payload {
        [] => Err(ProtocolError::Empty),
        [0, reason @ ..] if fds.is_empty() => {
            Ok(Answer::Denied(String::from_utf8_lossy(reason).into_owned()))
        }
        [0, ..] => Err(ProtocolError::Malformed("a denial carries descriptors")),
        [n] if usize::from(*n) == fds.len() => Ok(Answer::Granted(fds)),
        [n] => Err(ProtocolError::CountMismatch {
            announced: *n,
            received: fds.len(),
        }),
        [_, ..] => Err(ProtocolError::Malformed(
            "a grant carries more than its count byte",
        )),
    }
}

/// Receives and decodes one answer on a connected socket (blocking). Descriptors are
/// received close-on-exec (MSG_CMSG_CLOEXEC).
pub fn receive(conn: BorrowedFd<'_>) -> Result<Answer, ReceiveError> {
    let mut payload = [0u8; 1 + MAX_REASON];
    let mut cmsg_space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut iov = [std::io::IoSliceMut::new(&mut payload)];
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg_space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(ReceiveError::Io)?;
    let truncated = msg.flags.contains(MsgFlags::MSG_CTRUNC);
    let mut fds = Vec::new();
    // With MSG_CTRUNC, nix refuses to iterate; the descriptors that did arrive are then
    // unreachable here, which is why the buffer holds the protocol's maximum.
    if let Ok(cmsgs) = msg.cmsgs() {
        for cmsg in cmsgs {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                fds.extend(raw.into_iter().map(crate::sys::own_received));
            }
        }
    }
    let len = msg.bytes;
    decode(&payload[..len], fds, truncated).map_err(ReceiveError::Protocol)
}

/// Receiving an answer failed.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// recvmsg failed.
    #[error("cannot receive the answer: {0}")]
    Io(nix::Error),
    /// The answer broke the protocol.
    #[error(transparent)]
    Protocol(ProtocolError),
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn decode_rejects_malformed_answers() {
        let fd = || UnixStream::pair().unwrap().0.into();
        assert_eq!(
            decode(&[2], vec![fd()], false).unwrap_err(),
            ProtocolError::CountMismatch {
                announced: 2,
                received: 1
            }
        );
        assert_eq!(
            decode(&[1, 1], vec![fd()], false).unwrap_err(),
            ProtocolError::Malformed("a grant carries more than its count byte")
        );
        assert_eq!(
            decode(&[0], vec![fd()], false).unwrap_err(),
            ProtocolError::Malformed("a denial carries descriptors")
        );
        assert_eq!(
            decode(&[1], vec![fd()], true).unwrap_err(),
            ProtocolError::Truncated
        );
        assert!(
            matches!(decode(&[0, b'n', b'o'], vec![], false), Ok(Answer::Denied(r)) if r == "no")
        );
    }
}
