//! The hand-over of a granted socket to a bind(2) that asks for its address: checked, then
//! put at the program's descriptor number with dup3.

use std::net::SocketAddr;

use libc::c_int;

use crate::granted::{self, Granted};
use crate::identity::Kind;
use crate::sys;
use crate::warning::{self, Warning};

/// How many times a hand-over is retried when another thread moved the socket meanwhile.
const ATTEMPTS: usize = 64;

/// If a bind of `target` on `fd` asks for a granted socket, puts that socket at `fd` and
/// returns bind's result (0, or -1 with errno); `None` lets the real bind(2) handle it,
/// which it does for every address that is not granted and whenever the granted socket is
/// no longer where the shim kept it (with a warning, since the program asked for it).
pub fn take_over(fd: c_int, target: &SocketAddr) -> Option<c_int> {
    let table = granted::table()?;
    // The socket's kind costs three system calls: only for an address that was granted.
    if !table.has_address(target) {
        return None;
    }
    let kind = Kind::of(fd)?;
    let granted = table.serving(kind, target)?;
    let saved = sys::errno();
    let mut outcome = Outcome::Lost;
    for _ in 0..ATTEMPTS {
        let Some(kept) = granted.fd() else { break };
        outcome = hand_over(granted, kept, fd, kind);
        if !matches!(outcome, Outcome::Moved) {
            break;
        }
    }
    match outcome {
        Outcome::Served { mode } => {
            if let Some(shared_nonblocking) = mode {
                warning::print(Warning::Mode { shared_nonblocking }, target, granted.name());
            }
            sys::set_errno(saved);
            Some(0)
        }
        Outcome::Failed => Some(-1),
        Outcome::Moved | Outcome::Lost => {
            warning::print(Warning::Lost, target, granted.name());
            sys::set_errno(saved);
            None
        }
    }
}

/// How a hand-over went.
enum Outcome {
    /// The granted socket is at the program's fd; `mode` is the shared socket's O_NONBLOCK
    /// when it differs from what the program's socket had.
    Served { mode: Option<bool> },
    /// A system call failed (errno is set).
    Failed,
    /// Another thread moved the socket while this one looked: look again.
    Moved,
    /// It is gone (and forgotten); the program's fd holds a socket of its own.
    Lost,
}

/// Puts the granted socket kept at `kept` at `fd` with dup3, keeping `fd`'s close-on-exec
/// flag.
///
/// The number is checked in full (the recorded identity) before the dup3, and the result
/// is checked again after it: close() and dup2() cannot take the socket from its number
/// (the shim's guards), but a raw system call in another thread could, in between. Then
/// `fd` holds someone else's descriptor, and gets a fresh socket of the program's kind
/// instead (without the options the program set on its own; it only happens when the
/// program closes descriptors behind libc's back while it binds).
///
/// The shared socket's O_NONBLOCK is left as it is: it belongs to the open file description
/// every holder shares, so a program that asked for the other mode is told, not obeyed.
fn hand_over(granted: &Granted, kept: c_int, fd: c_int, kind: Kind) -> Outcome {
    if !granted.identity().is_at(kept) {
        return forget(granted, kept);
    }
    let (Some(cloexec), Some(asked)) = (sys::is_cloexec(fd), sys::status_flags(fd)) else {
        return Outcome::Failed;
    };
    let dup_flags = if cloexec { libc::O_CLOEXEC } else { 0 };
    if sys::real_dup(kept, fd, Some(dup_flags)) < 0 {
        // EBADF: `kept` was closed since the check (moved aside and its number reused and
        // closed by another thread, or a raw close).
        return if sys::errno() == libc::EBADF {
            forget(granted, kept)
        } else {
            Outcome::Failed
        };
    }
    if !granted.identity().is_file_at(fd) {
        if !renew(fd, kind, dup_flags, asked) {
            return Outcome::Failed;
        }
        return forget(granted, kept);
    }
    let shared = sys::status_flags(fd).unwrap_or(asked) & libc::O_NONBLOCK != 0;
    Outcome::Served {
        mode: (shared != (asked & libc::O_NONBLOCK != 0)).then_some(shared),
    }
}

/// Replaces what `fd` holds with a new, unbound socket of `kind`, with the program's
/// close-on-exec flag (`dup_flags`) and file status flags (`status`). On failure `fd` is
/// closed, so that it holds nothing foreign, and errno is EBADF's.
fn renew(fd: c_int, kind: Kind, dup_flags: c_int, status: c_int) -> bool {
    let fresh = sys::new_socket(kind.domain, kind.kind, kind.protocol);
    let renewed = fresh.is_some_and(|new| {
        let placed = sys::real_dup(new, fd, Some(dup_flags)) == fd;
        sys::real_close(new);
        placed && sys::set_status_flags(fd, status)
    });
    if !renewed {
        sys::real_close(fd);
        sys::set_errno(libc::EBADF);
    }
    renewed
}

/// Forgets the socket kept at `kept`, unless another thread moved it meanwhile.
fn forget(granted: &Granted, kept: c_int) -> Outcome {
    if granted.moved(kept, -1) || granted.fd().is_none() {
        Outcome::Lost
    } else {
        Outcome::Moved
    }
}
