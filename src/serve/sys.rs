//! The few system calls that neither std nor nix wrap, for the daemon. All of the daemon's
//! `unsafe` is here (the caller's commands have theirs in exec/src/sys.rs, the shim crate
//! its own), each block with the invariant that makes it sound.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::unistd::Gid;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

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

/// The supplementary groups of a Unix socket's peer at connect time (SO_PEERGROUPS,
/// Linux 4.13+).
pub fn peer_groups(conn: BorrowedFd<'_>) -> io::Result<Vec<Gid>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = (groups.len() * size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `groups`, which has exactly
        // that many bytes, and updates `len` to the bytes written (or needed, on ERANGE).
        let ret = unsafe {
            libc::getsockopt(
                conn.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let count = len as usize / size_of::<libc::gid_t>();
        if ret == 0 {
            groups.truncate(count);
            return Ok(groups.into_iter().map(Gid::from_raw).collect());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) || count <= groups.len() {
            return Err(err);
        }
        groups.resize(count, 0);
    }
}

/// Sets an `int` socket option that nix has no wrapper for (TCP_DEFER_ACCEPT, TCP_FASTOPEN).
pub fn set_int_sockopt(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the kernel reads exactly `size_of::<c_int>()` bytes from `&value`, which
    // lives for the call; an unknown option or a bad descriptor is an error, not UB.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Bytes that the daemon sent on a connected Unix socket and that are still in its peer's
/// receive queue (SIOCOUTQ): 0 once the peer has read the answer, or closed.
pub fn unread_bytes(conn: BorrowedFd<'_>) -> io::Result<usize> {
    let mut bytes: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (TIOCOUTQ) writes one int through its pointer argument, which points
    // at `bytes`, alive and writable for the whole call.
    check(unsafe {
        libc::ioctl(
            conn.as_raw_fd(),
            libc::TIOCOUTQ,
            &mut bytes as *mut libc::c_int,
        )
    })?;
    Ok(bytes.max(0) as usize)
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

/// Opens the syslog connection now (LOG_NDELAY), so no later call needs to open /dev/log
/// from inside the sandbox. glibc reconnects by itself if the syslog daemon restarts.
pub fn openlog(ident: &'static CStr, facility: libc::c_int) {
    // SAFETY: glibc keeps the `ident` pointer for later syslog() calls; it is 'static.
    unsafe { libc::openlog(ident.as_ptr(), libc::LOG_PID | libc::LOG_NDELAY, facility) };
}

/// Sends one message to syslog with the given priority (level | facility).
pub fn syslog(priority: libc::c_int, message: &CStr) {
    // SAFETY: the format is a literal "%s" consuming exactly one NUL-terminated string,
    // which `message` is; the message itself is never used as a format.
    unsafe { libc::syslog(priority, c"%s".as_ptr(), message.as_ptr()) };
}

/// Removes an environment variable. Only for start-up, while the process has one thread.
pub(crate) fn unset_env_single_threaded(name: &str) {
    // SAFETY: remove_var races only with other threads reading the environment; the
    // daemon calls this during start-up, before any thread exists (it never starts one).
    unsafe { std::env::remove_var(name) };
}

unsafe extern "C" {
    /// glibc: replaces a database's nsswitch.conf line for this process (see the glibc
    /// manual, "Name Service Switch", and nss(5)).
    fn __nss_configure_lookup(
        db: *const libc::c_char,
        service_line: *const libc::c_char,
    ) -> libc::c_int;
}

/// Makes user and group lookups read the local files only (`passwd: files`,
/// `group: files`), for the rest of the process's life. glibc then neither loads another
/// NSS module, nor asks nscd, nor re-reads nsswitch.conf: inside the sandbox a lookup is
/// openat/fstat/read/close of /etc/passwd or /etc/group and nothing else.
pub fn nss_files_only() -> io::Result<()> {
    for db in [c"passwd", c"group"] {
        // SAFETY: both arguments are NUL-terminated 'static strings; glibc copies what it
        // keeps. Called during start-up, while the process has one thread.
        if unsafe { __nss_configure_lookup(db.as_ptr(), c"files".as_ptr()) } != 0 {
            return Err(io::Error::other(format!(
                "__nss_configure_lookup({}, files) failed",
                db.to_string_lossy()
            )));
        }
    }
    Ok(())
}

/// Loads the local time zone now (tzset(3)), so that glibc's syslog(3), which stamps each
/// message with the local time, never needs /etc/localtime or the zoneinfo file it links
/// to once the sandbox forbids reading them.
pub fn tzset() {
    unsafe extern "C" {
        fn tzset();
    }
    // SAFETY: tzset takes no arguments; it reads TZ and the zone file into glibc's own
    // state. Called during start-up, while the process has one thread.
    unsafe { tzset() };
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

/// Reads an `int` socket option that nix has no wrapper for (SO_DOMAIN, SO_PROTOCOL).
pub fn int_sockopt(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int) -> io::Result<i32> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes, the size of `value`, which lives for the
    // call, and stores the length written in `len`.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw mut value).cast(),
            &mut len,
        )
    })?;
    Ok(value)
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

/// The socket's cookie (SO_COOKIE, Linux 4.12+): a number the kernel gives each socket when it
/// is first asked, never the same for two sockets until the next boot, and the same through
/// every descriptor of the socket, in every process. Start-up records the cookies of the
/// sockets it bound, and recovers only a socket whose cookie it recorded
/// (src/serve/setup/record/).
pub fn socket_cookie(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut cookie: u64 = 0;
    let mut len = size_of::<u64>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes, the size of `cookie`, which lives for the
    // call, and stores the length written in `len`.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_COOKIE,
            (&raw mut cookie).cast(),
            &mut len,
        )
    })?;
    if len as usize != size_of::<u64>() {
        return Err(io::Error::other(format!(
            "SO_COOKIE returned {len} bytes, not 8"
        )));
    }
    Ok(cookie)
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
