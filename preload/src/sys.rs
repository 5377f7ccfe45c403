//! Every libc call of the shim, with its `unsafe`.

use std::ffi::CString;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::atomic::{AtomicUsize, Ordering};

use libc::{c_int, sockaddr, socklen_t};

type BindFn = unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int;

/// The next bind(2) in the lookup order (libc's), resolved once.
static REAL_BIND: AtomicUsize = AtomicUsize::new(0);

/// Sets errno and returns -1, as a failing system call does.
pub fn fail(errno: c_int) -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() = errno };
    -1
}

/// Resolves the real bind(2) (the next one in the lookup order, libc's). Called from the
/// load-time constructor, so that bind() itself never calls dlsym, which is not
/// async-signal-safe.
pub fn resolve_real_bind() {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name only looks up a symbol.
    let f = unsafe { libc::dlsym(libc::RTLD_NEXT, c"bind".as_ptr()) } as usize;
    REAL_BIND.store(f, Ordering::Release);
}

/// Calls the real bind(2).
///
/// # Safety
///
/// The arguments must satisfy bind(2)'s contract, as our caller's did.
pub unsafe fn real_bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let f = REAL_BIND.load(Ordering::Acquire);
    if f == 0 {
        return fail(libc::ENOSYS);
    }
    // SAFETY: `f` is the address dlsym gave for libc's bind, whose signature is BindFn.
    let real: BindFn = unsafe { std::mem::transmute::<usize, BindFn>(f) };
    // SAFETY: forwarded unchanged under the caller's contract.
    unsafe { real(fd, addr, len) }
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

/// SO_TYPE and SO_PROTOCOL of `fd`: (SOCK_STREAM, IPPROTO_TCP) for TCP, and so on, so an
/// SCTP or MPTCP stream socket is never mistaken for TCP.
pub fn socket_type(fd: c_int) -> Option<(c_int, c_int)> {
    Some((
        socket_option(fd, libc::SO_TYPE)?,
        socket_option(fd, libc::SO_PROTOCOL)?,
    ))
}

/// The type and local address of a granted socket.
pub fn describe(fd: c_int) -> Option<((c_int, c_int), SocketAddr)> {
    let kind = socket_type(fd)?;
    // SAFETY: an all-zero sockaddr_storage is a valid value of the type.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: getsockname writes at most `len` bytes into `storage`, which has that size.
    let ret = unsafe { libc::getsockname(fd, (&raw mut storage).cast(), &mut len) };
    if ret != 0 {
        return None;
    }
    // SAFETY: `storage` holds `len` bytes just written by the kernel.
    let addr = unsafe { read_sockaddr((&raw const storage).cast(), len) }?;
    Some((kind, addr))
}

/// Marks `fd` close-on-exec.
pub fn set_cloexec(fd: c_int) {
    // SAFETY: F_GETFD/F_SETFD only read and set the descriptor's flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}

/// Puts `granted` at `fd` (dup3), keeping `fd`'s close-on-exec flag. The shared socket's
/// O_NONBLOCK is left as it is: it belongs to the open file description every holder
/// shares. Returns 0 (or -1 with errno set), and the shared socket's O_NONBLOCK when it
/// differs from what `fd` had.
pub fn replace(granted: c_int, fd: c_int) -> (c_int, Option<bool>) {
    // SAFETY: fcntl and dup3 act on descriptors only. dup3 atomically closes the program's
    // own, still unbound socket at `fd` and makes `fd` refer to the granted socket, which
    // is exactly the program's intent in binding it.
    unsafe {
        let fd_flags = libc::fcntl(fd, libc::F_GETFD);
        let asked = libc::fcntl(fd, libc::F_GETFL);
        let shared = libc::fcntl(granted, libc::F_GETFL);
        if fd_flags < 0 || asked < 0 || shared < 0 {
            return (-1, None);
        }
        let cloexec = if fd_flags & libc::FD_CLOEXEC != 0 {
            libc::O_CLOEXEC
        } else {
            0
        };
        if libc::dup3(granted, fd, cloexec) < 0 {
            return (-1, None);
        }
        let shared_nonblocking = shared & libc::O_NONBLOCK != 0;
        let differs = shared_nonblocking != (asked & libc::O_NONBLOCK != 0);
        (0, differs.then_some(shared_nonblocking))
    }
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
