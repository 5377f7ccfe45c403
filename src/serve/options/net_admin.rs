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
#[derive(Clone, Copy)]
pub enum Buffer {
    /// SO_RCVBUF.
    Receive,
    /// SO_SNDBUF.
    Send,
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
    let most = i32::MAX as usize;
    let kept = match which {
        Buffer::Receive => {
            setsockopt(&scratch, sockopt::RcvBuf, &most)?;
            getsockopt(&scratch, sockopt::RcvBuf)?
        }
        Buffer::Send => {
            setsockopt(&scratch, sockopt::SndBuf, &most)?;
            getsockopt(&scratch, sockopt::SndBuf)?
        }
    };
    Ok(kept as u64 / 2)
}

/// Whether setting the buffer `which` of `fd` to `bytes` again is within what the kernel grants
/// without CAP_NET_ADMIN: nothing to set (the socket has it), or at most [`buffer_max`]. A
/// reload checks this before it changes anything, since a buffer, once set, cannot be put back:
/// a buffer set with FORCE at start that a holder has since changed can only be set again
/// with the capability the daemon gave up.
pub fn buffer_within_grant(fd: &OwnedFd, which: Buffer, bytes: u32) -> Result<(), OptionError> {
    let (field, sysctl) = match which {
        Buffer::Receive => ("receive_buffer", "net.core.rmem_max"),
        Buffer::Send => ("send_buffer", "net.core.wmem_max"),
    };
    let fail = |errno| failed(field, bytes.to_string(), errno);
    let has = match which {
        Buffer::Receive => getsockopt(fd, sockopt::RcvBuf),
        Buffer::Send => getsockopt(fd, sockopt::SndBuf),
    }
    .map_err(fail)?;
    let max = buffer_max(which).map_err(fail)?;
    if has == bytes as usize * 2 || u64::from(bytes) <= max {
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
    let (field, sysctl, unit_key) = match which {
        Buffer::Receive => ("receive_buffer", "net.core.rmem_max", "ReceiveBuffer="),
        Buffer::Send => ("send_buffer", "net.core.wmem_max", "SendBuffer="),
    };
    let get = || match which {
        Buffer::Receive => getsockopt(fd, sockopt::RcvBuf),
        Buffer::Send => getsockopt(fd, sockopt::SndBuf),
    };
    let want = bytes as usize * 2;
    if get().is_ok_and(|has| has == want) {
        return Ok(());
    }
    let forced = match which {
        Buffer::Receive => setsockopt(fd, sockopt::RcvBufForce, &(bytes as usize)),
        Buffer::Send => setsockopt(fd, sockopt::SndBufForce, &(bytes as usize)),
    };
    match forced {
        Ok(()) => {}
        Err(Errno::EPERM) => match which {
            Buffer::Receive => setsockopt(fd, sockopt::RcvBuf, &(bytes as usize)),
            Buffer::Send => setsockopt(fd, sockopt::SndBuf, &(bytes as usize)),
        }
        .map_err(|e| failed(field, bytes.to_string(), e))?,
        Err(errno) => return Err(failed(field, bytes.to_string(), errno)),
    }
    let has = get().map_err(|e| failed(field, bytes.to_string(), e))?;
    if has >= want {
        return Ok(());
    }
    Err(OptionError {
        field,
        value: Some(bytes.to_string()),
        problem: format!(
            "the kernel capped it at {} bytes ({sysctl}): a larger buffer needs {} and so \
             CAP_NET_ADMIN, which this process does not have",
            has / 2,
            match which {
                Buffer::Receive => "SO_RCVBUFFORCE",
                Buffer::Send => "SO_SNDBUFFORCE",
            }
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
