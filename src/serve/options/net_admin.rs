//! The options that need CAP_NET_ADMIN: SO_MARK (to set it at all) and a buffer beyond the
//! sysctl maximum (SO_RCVBUFFORCE / SO_SNDBUFFORCE), which applications cannot set. Without
//! the capability they fail with a message that names it, never silently less.

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, getsockopt, setsockopt, socket, sockopt,
};

use super::error::{Made, NET_ADMIN_FIX, OptionError, failed};

/// SO_MARK needs CAP_NET_ADMIN to be set, to any value: it is set only when it differs.
pub fn mark(fd: &OwnedFd, want: Option<u32>, made: Made) -> Result<(), OptionError> {
    if want.is_none() && made == Made::Here {
        return Ok(());
    }
    let value = want.map(|m| m.to_string());
    let fail = |errno| failed("mark", value.clone().unwrap_or_default(), errno);
    let has = getsockopt(fd, sockopt::Mark).map_err(fail)?;
    let target = want.unwrap_or(0);
    if has == target {
        return Ok(());
    }
    let missing = "setting SO_MARK needs CAP_NET_ADMIN, which this process does not have";
    match setsockopt(fd, sockopt::Mark, &target) {
        Ok(()) => Ok(()),
        Err(Errno::EPERM) if made == Made::Inherited => Err(OptionError {
            field: "mark",
            value,
            problem: format!("the inherited socket has the mark {has}, and {missing}"),
            fix: format!(
                "set `mark = {has}` for this binding, or {} the socket unit, or {NET_ADMIN_FIX}",
                if target == 0 {
                    "remove Mark= from".to_owned()
                } else {
                    format!("set Mark={target} in")
                }
            ),
        }),
        Err(Errno::EPERM) => Err(OptionError {
            field: "mark",
            value,
            problem: missing.to_owned(),
            fix: NET_ADMIN_FIX.to_owned(),
        }),
        Err(errno) => Err(fail(errno)),
    }
}

/// Which of the two buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffer {
    /// SO_RCVBUF.
    Receive,
    /// SO_SNDBUF.
    Send,
}

impl Buffer {
    /// Both, in the configuration's order.
    pub const BOTH: [Buffer; 2] = [Buffer::Receive, Buffer::Send];

    /// The configuration key.
    pub fn field(self) -> &'static str {
        match self {
            Buffer::Receive => "receive_buffer",
            Buffer::Send => "send_buffer",
        }
    }

    /// The sysctl that caps it without CAP_NET_ADMIN.
    pub fn sysctl(self) -> &'static str {
        match self {
            Buffer::Receive => "net.core.rmem_max",
            Buffer::Send => "net.core.wmem_max",
        }
    }

    /// Its size in `options`, if set.
    pub fn of(self, options: &crate::config::SocketOptions) -> Option<u32> {
        match self {
            Buffer::Receive => options.receive_buffer,
            Buffer::Send => options.send_buffer,
        }
    }

    /// What the kernel keeps for it on `fd` (twice what was asked for).
    fn get(self, fd: &OwnedFd) -> Result<usize, Errno> {
        match self {
            Buffer::Receive => getsockopt(fd, sockopt::RcvBuf),
            Buffer::Send => getsockopt(fd, sockopt::SndBuf),
        }
    }

    /// SO_RCVBUF / SO_SNDBUF, or with `force` SO_RCVBUFFORCE / SO_SNDBUFFORCE.
    fn set(self, fd: &OwnedFd, bytes: usize, force: bool) -> Result<(), Errno> {
        match (self, force) {
            (Buffer::Receive, false) => setsockopt(fd, sockopt::RcvBuf, &bytes),
            (Buffer::Send, false) => setsockopt(fd, sockopt::SndBuf, &bytes),
            (Buffer::Receive, true) => setsockopt(fd, sockopt::RcvBufForce, &bytes),
            (Buffer::Send, true) => setsockopt(fd, sockopt::SndBufForce, &bytes),
        }
    }
}

/// The largest buffer SO_RCVBUF / SO_SNDBUF can give now (net.core.rmem_max / wmem_max), in
/// bytes as the configuration counts them: what the kernel gives a scratch Unix socket that
/// asks for the most. It is the kernel's own answer, so it holds where /proc/sys cannot be read
/// (systemd's `ProcSubset=pid`) and needs no more of the sandbox than a reload's options and
/// syslog's reconnection do.
pub fn buffer_max(which: Buffer) -> Result<u64, Errno> {
    let scratch = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // The kernel keeps twice what it grants, and grants at most half of i32::MAX.
    which.set(&scratch, i32::MAX as usize, false)?;
    Ok(which.get(&scratch)? as u64 / 2)
}

/// Whether setting the buffer `which` of `fd` to `bytes` again is within what the kernel grants
/// without CAP_NET_ADMIN: nothing to set (the socket has it), or at most [`buffer_max`]. A
/// reload checks this before it changes anything, since a buffer, once set, cannot be put back:
/// a buffer set with FORCE at start that a holder has since changed can only be set again
/// with the capability the daemon gave up.
pub fn buffer_within_grant(fd: &OwnedFd, which: Buffer, bytes: u32) -> Result<(), OptionError> {
    let (field, sysctl) = (which.field(), which.sysctl());
    let fail = |errno| failed(field, bytes.to_string(), errno);
    let has = which.get(fd).map_err(fail)?;
    if has == bytes as usize * 2 {
        return Ok(());
    }
    let max = buffer_max(which).map_err(fail)?;
    if u64::from(bytes) <= max {
        return Ok(());
    }
    Err(OptionError {
        field,
        value: Some(bytes.to_string()),
        problem: format!(
            "the socket's buffer is {} bytes now (a holder changed it), and setting it again \
             beyond {sysctl} ({max} bytes) needs CAP_NET_ADMIN, which the daemon gave up",
            has / 2
        ),
        fix: "restart portbinder to apply".to_owned(),
    })
}

/// SO_RCVBUFFORCE / SO_SNDBUFFORCE (CAP_NET_ADMIN, no limit), else SO_RCVBUF / SO_SNDBUF
/// (capped at net.core.rmem_max / wmem_max). The kernel keeps twice the value asked for
/// (for its bookkeeping), which is what getsockopt reads back; anything less means capped.
pub fn buffer(fd: &OwnedFd, which: Buffer, bytes: u32, made: Made) -> Result<(), OptionError> {
    let (field, sysctl) = (which.field(), which.sysctl());
    let fail = |errno| failed(field, bytes.to_string(), errno);
    let want = bytes as usize * 2;
    if which.get(fd).is_ok_and(|has| has == want) {
        return Ok(());
    }
    match which.set(fd, bytes as usize, true) {
        Ok(()) => {}
        Err(Errno::EPERM) => which.set(fd, bytes as usize, false).map_err(fail)?,
        Err(errno) => return Err(fail(errno)),
    }
    let has = which.get(fd).map_err(fail)?;
    if has >= want {
        return Ok(());
    }
    let (force, unit_key) = match which {
        Buffer::Receive => ("SO_RCVBUFFORCE", "ReceiveBuffer="),
        Buffer::Send => ("SO_SNDBUFFORCE", "SendBuffer="),
    };
    Err(OptionError {
        field,
        value: Some(bytes.to_string()),
        problem: format!(
            "the kernel capped it at {} bytes ({sysctl}): a larger buffer needs {force} and so \
             CAP_NET_ADMIN, which this process does not have",
            has / 2,
        ),
        fix: format!(
            "{NET_ADMIN_FIX}; or raise {sysctl} to at least {bytes}{}",
            if made == Made::Inherited {
                format!("; or give the socket unit {unit_key}{bytes}")
            } else {
                String::new()
            }
        ),
    })
}
