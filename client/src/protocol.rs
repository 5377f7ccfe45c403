//! The wire format of an answer (docs/PROTOCOL.md), as a client receives it:
//!
//! * grant: payload one byte `N` (1..=255) and `SCM_RIGHTS` carrying `N` sockets;
//! * denial: payload byte `0` followed by a UTF-8 reason, and no descriptors.

use std::io;
#[cfg(test)]
use std::os::fd::RawFd;
use std::os::fd::{BorrowedFd, OwnedFd};

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
    Io(io::Error),
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
    receive_at_most(conn, MAX_FDS)
}

/// [`receive`] with room for only `max_fds` descriptors (a smaller buffer makes the kernel
/// truncate larger grants, which is reported, never leaked).
pub fn receive_at_most(conn: BorrowedFd<'_>, max_fds: usize) -> Result<Answer, ReceiveError> {
    let mut payload = [0u8; 1 + MAX_REASON];
    let got = sys::recv_with_fds(conn, &mut payload, max_fds).map_err(ReceiveError::Io)?;
    decode(&payload[..got.len], got.fds, got.truncated).map_err(ReceiveError::Protocol)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, AsRawFd};
    use std::os::unix::net::UnixStream;

    fn send(to: &UnixStream, payload: &[u8], fds: &[RawFd]) {
        let cmsg = [nix::sys::socket::ControlMessage::ScmRights(fds)];
        let cmsg: &[_] = if fds.is_empty() { &[] } else { &cmsg };
        nix::sys::socket::sendmsg::<()>(
            to.as_raw_fd(),
            &[std::io::IoSlice::new(payload)],
            cmsg,
            nix::sys::socket::MsgFlags::empty(),
            None,
        )
        .unwrap();
    }

    /// The lowest descriptor number that is free right now.
    fn lowest_free() -> RawFd {
        let probe = std::fs::File::open("/dev/null").unwrap();
        probe.as_raw_fd()
    }

    /// Serialises the tests of this module: they watch descriptor numbers.
    static FDS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn truncated_grants_are_errors_and_leak_nothing() {
        let _fds = FDS.lock().unwrap();
        let (daemon, client) = UnixStream::pair().unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let (c, d) = UnixStream::pair().unwrap();
        let four = [a.as_raw_fd(), b.as_raw_fd(), c.as_raw_fd(), d.as_raw_fd()];
        send(&daemon, &[4], &four);
        let free = lowest_free();
        // Room for one descriptor (CMSG_SPACE rounds up to two): the kernel truncates.
        let err = receive_at_most(client.as_fd(), 1).unwrap_err();
        assert!(
            matches!(err, ReceiveError::Protocol(ProtocolError::Truncated)),
            "{err:?}"
        );
        // The descriptors that did arrive landed on the lowest free numbers and were
        // closed again with the error.
        assert_eq!(lowest_free(), free);
    }

    #[test]
    fn grants_denials_and_eof() {
        let _fds = FDS.lock().unwrap();
        let (daemon, client) = UnixStream::pair().unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        send(&daemon, &[2], &[a.as_raw_fd(), b.as_raw_fd()]);
        assert!(matches!(receive(client.as_fd()), Ok(Answer::Granted(fds)) if fds.len() == 2));
        send(&daemon, b"\0go away", &[]);
        assert!(matches!(receive(client.as_fd()), Ok(Answer::Denied(r)) if r == "go away"));
        drop(daemon);
        assert!(matches!(
            receive(client.as_fd()),
            Err(ReceiveError::Protocol(ProtocolError::Empty))
        ));
    }
}
