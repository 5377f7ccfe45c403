//! The daemon's own process: inherited descriptors, the directory lock, the environment at
//! start-up, the capability sets the drop empties (securebits, bounding, ambient), the clock.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::check::check;

/// Closes every fd from `first` upwards (close_range(2), Linux 5.9+), falling back to
/// closing the fds listed in /proc/self/fd on older kernels.
pub fn close_fds_from(first: RawFd) -> io::Result<()> {
    let first = u32::try_from(first).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: close_range only closes descriptors. Nothing in this process holds a
    // descriptor at or above `first` that it still uses: this runs at start-up, before the
    // daemon opens anything, and the caller keeps the LISTEN_FDS range below `first`.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
    if ret == 0 {
        return Ok(());
    }
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd: &RawFd| fd >= first as RawFd)
        .collect();
    for fd in fds {
        // SAFETY: as above; the fd of the read_dir iterator is closed by now, and EBADF
        // for an fd that vanished is harmless.
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// Takes ownership of an inherited descriptor after checking that it is open.
///
/// The caller must guarantee that nothing else in the process owns `fd`: it is called
/// only for the LISTEN_FDS range, once, at start-up.
pub(crate) fn adopt_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: the fd is open (checked above) and, per the LISTEN_FDS protocol, handed to
    // this process to own; the caller adopts each fd of the range exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Takes an exclusive advisory lock on `fd` without waiting (flock(2) LOCK_EX|LOCK_NB);
/// `Ok(false)` when another open file description holds it. The lock lasts as long as the
/// descriptor stays open.
pub fn try_lock_exclusive(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: flock only acts on the open file description behind a valid descriptor.
    match check(unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes an environment variable. Only for start-up, while the process has one thread.
pub(crate) fn unset_env_single_threaded(name: &str) {
    // SAFETY: remove_var races only with other threads reading the environment; the
    // daemon calls this during start-up, before any thread exists (it never starts one).
    unsafe { std::env::remove_var(name) };
}

/// Reads the securebits (PR_GET_SECUREBITS).
pub fn securebits() -> io::Result<u32> {
    // SAFETY: PR_GET_SECUREBITS takes no pointer arguments.
    check(unsafe { libc::prctl(libc::PR_GET_SECUREBITS) }).map(|b| b as u32)
}

/// Sets the securebits (PR_SET_SECUREBITS; needs CAP_SETPCAP).
pub fn set_securebits(bits: u32) -> io::Result<()> {
    // SAFETY: PR_SET_SECUREBITS takes an integer; no memory is passed.
    check(unsafe { libc::prctl(libc::PR_SET_SECUREBITS, libc::c_ulong::from(bits)) }).map(drop)
}

/// Whether `cap` is in the bounding set (PR_CAPBSET_READ).
pub fn bounding_has(cap: u32) -> io::Result<bool> {
    // SAFETY: PR_CAPBSET_READ takes an integer; no memory is passed.
    check(unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap)) }).map(|r| r == 1)
}

/// Drops `cap` from the bounding set (PR_CAPBSET_DROP; needs CAP_SETPCAP).
pub fn bounding_drop(cap: u32) -> io::Result<()> {
    // SAFETY: PR_CAPBSET_DROP takes an integer; no memory is passed.
    check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap)) }).map(drop)
}

/// Clears the ambient capability set (PR_CAP_AMBIENT_CLEAR_ALL; needs no privilege).
pub fn ambient_clear() -> io::Result<()> {
    // SAFETY: integer arguments only; unused ones are zero as the man page requires.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })
    .map(drop)
}

/// CLOCK_MONOTONIC now, in microseconds: sd_notify(3)'s MONOTONIC_USEC= of `RELOADING=1`.
pub fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `now`, which lives for the call; the
    // monotonic clock exists on every Linux (the vDSO usually answers without a system call).
    let ret = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    if ret != 0 {
        return 0;
    }
    now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000
}
