//! The descriptor juggling of `portbinder exec` that neither std nor nix wraps. All of the
//! caller side's `unsafe` is here (the daemon's is in src/serve/sys/), each block with the
//! invariant that makes it sound.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Whether descriptor `fd` is open (F_GETFD succeeds). Allocates nothing.
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags; a closed fd gives EBADF.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Moves `fd` to number `target` for a program about to be exec'd: the new descriptor is
/// *not* close-on-exec, and is deliberately owned by nothing in this process (the exec
/// hands it to the program). The caller must have checked that `target` is not open.
pub(crate) fn place_for_exec(fd: OwnedFd, target: RawFd) -> io::Result<()> {
    if is_open(target) {
        return Err(io::Error::from_raw_os_error(libc::EBUSY));
    }
    // SAFETY: `target` is not open (checked just above, and the process is single-threaded
    // here), so dup2 closes nothing that anyone owns; `fd` stays owned by the OwnedFd,
    // which closes it when dropped below. dup2 leaves FD_CLOEXEC clear on `target`.
    check(unsafe { libc::dup2(fd.as_raw_fd(), target) })?;
    drop(fd);
    Ok(())
}

/// Duplicates `fd` to the lowest free number at or above `min`, close-on-exec.
pub fn dup_at_least(fd: &OwnedFd, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor that nothing else owns.
    let new = check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) })?;
    // SAFETY: `new` was just created by fcntl and is owned only here.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}
