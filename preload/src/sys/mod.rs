//! Every libc call of the shim, with its `unsafe`. None of these allocates or takes a lock:
//! close(), dup2() and friends may be called from a signal handler. The calls to the real
//! functions the shim interposes are in [`real`]; the plain ones here.

mod real;

use std::ffi::CString;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use libc::{c_int, sockaddr, socklen_t};

pub use real::*;

/// This thread's errno.
pub fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

/// Sets this thread's errno.
pub fn set_errno(value: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value };
}

/// Sets errno and returns -1, as a failing system call does.
pub fn fail(value: c_int) -> c_int {
    set_errno(value);
    -1
}
/// Reads an IPv4 or IPv6 socket address; `None` for anything else (Unix sockets…).
///
/// # Safety
///
/// `addr` is null or points to `len` readable bytes.
pub unsafe fn read_sockaddr(addr: *const sockaddr, len: socklen_t) -> Option<SocketAddr> {
    if addr.is_null() || (len as usize) < size_of::<libc::sa_family_t>() {
        return None;
    }
    // SAFETY: at least sa_family's bytes are readable (checked above).
    let family = c_int::from(unsafe { (*addr).sa_family });
    match family {
        libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says sockaddr_in and `len` covers it; read_unaligned
            // makes no alignment assumption about the caller's buffer.
            let sin = unsafe { addr.cast::<libc::sockaddr_in>().read_unaligned() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { addr.cast::<libc::sockaddr_in6>().read_unaligned() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            // The flow label plays no part in bind; the scope does (fe80::1%eth0).
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                0,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// An integer SOL_SOCKET option of `fd` (SO_DOMAIN, SO_TYPE, SO_PROTOCOL).
pub fn socket_option(fd: c_int, option: c_int) -> Option<c_int> {
    let mut value: c_int = 0;
    let mut len = size_of::<c_int>() as socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`, which has that size.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    (ret == 0).then_some(value)
}

/// The device and inode of `fd` if it is a socket.
pub fn socket_file(fd: c_int) -> Option<(u64, u64)> {
    // SAFETY: an all-zero `stat` is a valid value of the type.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes one `stat` into `st`.
    let ret = unsafe { libc::fstat(fd, &mut st) };
    #[allow(clippy::unnecessary_cast)] // st_dev and st_ino differ in type between targets
    (ret == 0 && st.st_mode & libc::S_IFMT == libc::S_IFSOCK)
        .then_some((st.st_dev as u64, st.st_ino as u64))
}

/// The local address of an IPv4 or IPv6 socket.
pub fn local_address(fd: c_int) -> Option<SocketAddr> {
    // SAFETY: an all-zero sockaddr_storage is a valid value of the type.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: getsockname writes at most `len` bytes into `storage`, which has that size.
    let ret = unsafe { libc::getsockname(fd, (&raw mut storage).cast(), &mut len) };
    if ret != 0 {
        return None;
    }
    // SAFETY: `storage` holds `len` bytes just written by the kernel.
    unsafe { read_sockaddr((&raw const storage).cast(), len) }
}

/// Whether `fd` is close-on-exec (`None` if it is not open).
pub fn is_cloexec(fd: c_int) -> Option<bool> {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    (flags >= 0).then_some(flags & libc::FD_CLOEXEC != 0)
}

/// Marks `fd` close-on-exec.
pub fn set_cloexec(fd: c_int) {
    if is_cloexec(fd) == Some(false) {
        // SAFETY: F_SETFD only sets the descriptor's flags.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

/// Sets the file status flags (F_SETFL: O_NONBLOCK…) of `fd`'s open file description.
pub fn set_status_flags(fd: c_int, flags: c_int) -> bool {
    // SAFETY: F_SETFL only sets the open file description's flags.
    unsafe { libc::fcntl(fd, libc::F_SETFL, flags) == 0 }
}

/// A new, unbound, close-on-exec socket.
pub fn new_socket(domain: c_int, kind: c_int, protocol: c_int) -> Option<c_int> {
    // SAFETY: socket takes no pointer and returns a new descriptor owned by the caller.
    let fd = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol) };
    (fd >= 0).then_some(fd)
}

/// A new descriptor for `fd`'s socket at the lowest free number at or above `min`.
pub fn dup_at_least(fd: c_int, min: c_int, cloexec: bool) -> Option<c_int> {
    let command = if cloexec {
        libc::F_DUPFD_CLOEXEC
    } else {
        libc::F_DUPFD
    };
    // SAFETY: F_DUPFD only creates a new descriptor at a free number; it never replaces one.
    let new = unsafe { libc::fcntl(fd, command, min) };
    (new >= 0).then_some(new)
}

/// The soft RLIMIT_NOFILE (the highest fd number a new descriptor may take, plus one).
pub fn fd_limit() -> u64 {
    // SAFETY: an all-zero rlimit is a valid value of the type.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: getrlimit writes one rlimit into `limit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    limit.rlim_cur
}

/// Writes `bytes` to fd 2 (one write; a short or failed write is not retried).
pub fn write_stderr(bytes: &[u8]) {
    // SAFETY: write reads `bytes.len()` bytes from a live slice.
    unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
}

/// Sets or unsets an environment variable from the load-time constructor.
pub fn set_env_at_load(name: &str, value: Option<&str>) {
    let Ok(name) = CString::new(name) else { return };
    match value.map(CString::new) {
        // SAFETY: called only from the constructor, before main, while the process has a
        // single thread, so nothing reads the environment concurrently.
        Some(Ok(value)) => unsafe { libc::setenv(name.as_ptr(), value.as_ptr(), 1) },
        // SAFETY: as above.
        None => unsafe { libc::unsetenv(name.as_ptr()) },
        Some(Err(_)) => 0,
    };
}
