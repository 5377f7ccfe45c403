//! The TCP-only options: TCP_DEFER_ACCEPT, TCP_FASTOPEN and keepalive with its timings,
//! which accepted connections inherit.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::sockopt;

use super::error::{OptionError, failed, flag, set};
use crate::config::SocketOptions;
use crate::serve::sys;

/// Sets TCP_DEFER_ACCEPT, TCP_FASTOPEN and SO_KEEPALIVE as `options` say, each only when set
/// or, with `reset` (an inherited socket), also back to its default (off) when not.
pub fn tcp_options(fd: &OwnedFd, options: &SocketOptions, reset: bool) -> Result<(), OptionError> {
    let int = |field: &'static str, name, value: Option<u32>| {
        if value.is_none() && !reset {
            return Ok(());
        }
        set_int(fd, field, name, value.unwrap_or(0) as libc::c_int)
    };
    int("defer_accept", libc::TCP_DEFER_ACCEPT, options.defer_accept)?;
    int("fast_open", libc::TCP_FASTOPEN, options.fast_open)?;
    if reset || options.keepalive {
        let on = options.keepalive;
        set(fd, "keepalive", sockopt::KeepAlive, &on, flag(on))?;
    }
    Ok(())
}

/// Sets the keepalive timings that `options` sets. One it leaves out keeps the socket's value:
/// its default is the kernel's sysctl, which a socket follows until a value is set, and never
/// again after.
pub fn keepalive_timings(fd: &OwnedFd, options: &SocketOptions) -> Result<(), OptionError> {
    if let Some(secs) = options.keepalive_idle {
        let shown = secs.to_string();
        set(fd, "keepalive_idle", sockopt::TcpKeepIdle, &secs, shown)?;
    }
    if let Some(secs) = options.keepalive_interval {
        let shown = secs.to_string();
        set(
            fd,
            "keepalive_interval",
            sockopt::TcpKeepInterval,
            &secs,
            shown,
        )?;
    }
    if let Some(count) = options.keepalive_count {
        let shown = count.to_string();
        set(fd, "keepalive_count", sockopt::TcpKeepCount, &count, shown)?;
    }
    Ok(())
}

/// Sets the `int` option `name` at level IPPROTO_TCP (nix wraps neither TCP_DEFER_ACCEPT nor
/// TCP_FASTOPEN), reported as `field`.
pub fn set_int(
    fd: &OwnedFd,
    field: &'static str,
    name: libc::c_int,
    value: libc::c_int,
) -> Result<(), OptionError> {
    sys::set_int_sockopt(fd.as_fd(), libc::IPPROTO_TCP, name, value).map_err(|e| {
        failed(
            field,
            value.to_string(),
            Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        )
    })
}
