//! The crate's only `unsafe`: receiving an answer with recvmsg(2) and parsing its control
//! messages by hand, so that every descriptor the kernel installed is owned (and closed
//! on every error path), even when the control data was truncated.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// One received message: payload length, the descriptors that arrived, and whether the
/// kernel truncated the control data (MSG_CTRUNC).
pub(crate) struct Received {
    pub len: usize,
    pub fds: Vec<OwnedFd>,
    pub truncated: bool,
}

/// recvmsg into `payload` with room for `max_fds` descriptors, received close-on-exec.
pub(crate) fn recv_with_fds(
    conn: BorrowedFd<'_>,
    payload: &mut [u8],
    max_fds: usize,
) -> io::Result<Received> {
    let space = cmsg_space(max_fds);
    // u64 elements keep the buffer aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    // SAFETY: an all-zero msghdr is valid (null name, no iov, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let len = loop {
        // SAFETY: msg points to one iovec over `payload` and to `control`, both live and
        // writable for the lengths given; the kernel writes within them.
        let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    let mut fds = Vec::new();
    // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR walk the control data the kernel just wrote, never
    // past msg_controllen (which the kernel set to what it wrote, also when truncating).
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: `cmsg` is a valid header inside `control` (from FIRSTHDR/NXTHDR).
        let header = unsafe { &*cmsg };
        if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN(0) is a constant computation.
            let data_len = header.cmsg_len as usize - unsafe { libc::CMSG_LEN(0) } as usize;
            // SAFETY: the data of an SCM_RIGHTS header is `data_len` bytes of ints.
            let data = unsafe { libc::CMSG_DATA(cmsg) };
            for i in 0..data_len / size_of::<RawFd>() {
                // SAFETY: within the header's data; read_unaligned makes no alignment claim.
                let fd = unsafe { data.cast::<RawFd>().add(i).read_unaligned() };
                // SAFETY: the kernel installed this descriptor for us during this recvmsg;
                // nothing else knows its number, so it is owned exactly once.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR above.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    Ok(Received {
        len,
        fds,
        truncated: msg.msg_flags & libc::MSG_CTRUNC != 0,
    })
}

fn cmsg_space(fds: usize) -> usize {
    // SAFETY: CMSG_SPACE is a constant computation.
    unsafe { libc::CMSG_SPACE((fds * size_of::<RawFd>()) as u32) as usize }
}
