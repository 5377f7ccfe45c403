//! Socket options and queues that nix does not wrap: the peer's supplementary groups, integer
//! options by level and name, the bytes still unread by a peer (SIOCOUTQ), a socket's cookie.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::unistd::Gid;

use super::check::check;

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
