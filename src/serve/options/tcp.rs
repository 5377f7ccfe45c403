//! The TCP-only options: TCP_DEFER_ACCEPT, TCP_FASTOPEN and keepalive with its timings,
//! which accepted connections inherit.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::sockopt;

use super::error::{OptionError, failed, flag, set};
use crate::config::SocketOptions;
use crate::serve::sys;

/// Sets the TCP options of `options` on `fd`; with `reset`, also puts the unset ones back
/// to their defaults (an inherited socket).
pub fn tcp_options(fd: &OwnedFd, options: &SocketOptions, reset: bool) -> Result<(), OptionError> {
    let int = |field: &'static str, name, value: Option<u32>| {
        if value.is_none() && !reset {
            return Ok(());
        }
        let value = value.unwrap_or(0);
        sys::set_int_sockopt(fd.as_fd(), libc::IPPROTO_TCP, name, value as libc::c_int).map_err(
            |e| {
                failed(
                    field,
                    value.to_string(),
                    Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                )
            },
        )
    };
    int("defer_accept", libc::TCP_DEFER_ACCEPT, options.defer_accept)?;
    int("fast_open", libc::TCP_FASTOPEN, options.fast_open)?;
    if reset || options.keepalive {
        let on = options.keepalive;
        set(fd, "keepalive", sockopt::KeepAlive, &on, flag(on))?;
    }
    if let Some(secs) = options.keepalive_idle {
        set(
            fd,
            "keepalive_idle",
            sockopt::TcpKeepIdle,
            &secs,
            secs.to_string(),
        )?;
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
