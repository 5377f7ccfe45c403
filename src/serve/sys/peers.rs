//! Other processes, at start-up only (recovery): pinning one with a pidfd, taking a duplicate
//! of one of its descriptors, and telling whether two tasks share a descriptor table.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// A pidfd of process `pid` of this pid namespace (pidfd_open(2), Linux 5.3+), close-on-exec:
/// it names that very process until the descriptor is closed, whatever reuses its number
/// after it exits. Start-up only (src/serve/setup/recover/); the sandbox forbids the call.
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers (flags 0) and reads no memory of ours.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success the kernel returned a descriptor it has just opened for this
    // process; nothing else in the process knows its number, so ownership is ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// A duplicate in this process of descriptor `fd` of the process behind `pidfd`
/// (pidfd_getfd(2), Linux 5.6+), close-on-exec. The kernel allows it only with ptrace
/// access to that process (PTRACE_MODE_ATTACH_REALCREDS: CAP_SYS_PTRACE over another user's
/// process, and within what Yama allows). The duplicate shares the open file description,
/// so it is the very socket the process holds. Start-up only; the sandbox forbids the call.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_getfd takes three integers (flags 0) and reads no memory of ours; it acts
    // on the process the valid pidfd names, never on one found by number.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0u32) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as for pidfd_open: a descriptor the kernel has just installed in this process,
    // known to nothing else here.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// Whether tasks `a` and `b` (thread ids of this pid namespace) share one descriptor table
/// (kcmp(2) KCMP_FILES, which needs ptrace read access to both): `Err` when the kernel cannot
/// tell (built without CONFIG_KCMP, or access refused). Start-up only, to read a thread's
/// /proc/PID/task/TID/fd only when it is not the table already read; the sandbox forbids it.
pub fn same_fd_table(a: libc::pid_t, b: libc::pid_t) -> io::Result<bool> {
    const KCMP_FILES: libc::c_int = 2;
    // SAFETY: kcmp takes five integers (the last two unused by KCMP_FILES) and reads no
    // memory of ours.
    let ret = unsafe { libc::syscall(libc::SYS_kcmp, a, b, KCMP_FILES, 0u64, 0u64) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret == 0)
}
