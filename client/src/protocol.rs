//! The wire format of an answer (docs/PROTOCOL.md), as a client receives it:
//!
//! * grant: payload one byte `N` (1..=255) and `SCM_RIGHTS` carrying `N` sockets;
//! * denial: payload byte `0` followed by a UTF-8 reason, and no descriptors.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

use crate::sys;

/// The most descriptors one grant carries.
pub const MAX_FDS: usize = 255;
/// The longest denial reason the daemon sends, in bytes.
pub const MAX_REASON: usize = 400;

/// The daemon's answer.
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
///
/// ```
/// use portbinder_client::protocol::{decode, Answer, ProtocolError};
/// assert!(matches!(decode(b"\0not in group www-data", vec![], false),
///                  Ok(Answer::Denied(r)) if r == "not in group www-data"));
/// assert_eq!(decode(&[1], vec![], false).unwrap_err(),
///            ProtocolError::CountMismatch { announced: 1, received: 0 });
/// ```
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

/// Receives and decodes one answer on a connected socket (blocking). Descriptors are
/// received close-on-exec (MSG_CMSG_CLOEXEC); on any error every received descriptor is
/// closed, none is leaked.
///
/// ```
/// use std::os::fd::{AsFd, AsRawFd};
/// use std::os::unix::net::UnixStream;
/// use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
/// use portbinder_client::protocol::{receive, Answer};
///
/// let (daemon, client) = UnixStream::pair()?;
/// let (granted, _) = UnixStream::pair()?;
/// let fds = [granted.as_raw_fd()];
/// sendmsg::<()>(daemon.as_raw_fd(), &[std::io::IoSlice::new(&[1])],
///               &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)?;
/// match receive(client.as_fd())? {
///     Answer::Granted(fds) => assert_eq!(fds.len(), 1),
///     Answer::Denied(reason) => panic!("denied: {reason}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn receive(conn: BorrowedFd<'_>) -> Result<Answer, ReceiveError> {
    let mut payload = [0u8; 1 + MAX_REASON];
    let mut cmsg_space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut iov = [IoSliceMut::new(&mut payload)];
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg_space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(ReceiveError::Io)?;
    let truncated = msg.flags.contains(MsgFlags::MSG_CTRUNC);
    let mut fds = Vec::new();
    // With MSG_CTRUNC nix refuses to iterate, and the descriptors that did arrive could not
    // be reached to close them: the buffer is sized for the protocol's maximum so that a
    // conforming daemon never causes it.
    if let Ok(cmsgs) = msg.cmsgs() {
        for cmsg in cmsgs {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                fds.extend(raw.into_iter().map(sys::own_received));
            }
        }
    }
    let len = msg.bytes;
    decode(&payload[..len], fds, truncated).map_err(ReceiveError::Protocol)
}
