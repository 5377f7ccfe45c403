//! What a bound socket's reversible options are now, read back from the kernel, so that a
//! reload that fails part way puts each socket back exactly as it was: as the kernel had it,
//! which is not always what the configuration in force says (a holder may have changed an
//! option of the shared socket since the daemon set it).

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{getsockopt, sockopt};

use super::error::{OptionError, failed, flag, set};
use super::tcp::set_int;
use crate::config::address::{ListenAddr, Proto};
use crate::serve::sys;

/// The options that `apply_reversible` may change on a bound socket, as they were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    reuse_address: bool,
    free_bind: bool,
    /// SO_KEEPALIVE, TCP_DEFER_ACCEPT (seconds, as the kernel reports it) and TCP_FASTOPEN
    /// (queue length): TCP only.
    tcp: Option<(bool, i32, i32)>,
}

impl Snapshot {
    /// Reads the options of `fd`, a bound socket for `addr`.
    pub fn take(fd: &OwnedFd, addr: &ListenAddr) -> Result<Snapshot, OptionError> {
        let read = |field, errno| failed(field, "(read back)".to_owned(), errno);
        let int = |field, name| {
            sys::int_sockopt(fd.as_fd(), libc::IPPROTO_TCP, name)
                .map_err(|e| read(field, Errno::from_raw(e.raw_os_error().unwrap_or(0))))
        };
        let tcp = match addr.proto {
            Proto::Tcp => Some((
                getsockopt(fd, sockopt::KeepAlive).map_err(|e| read("keepalive", e))?,
                int("defer_accept", libc::TCP_DEFER_ACCEPT)?,
                int("fast_open", libc::TCP_FASTOPEN)?,
            )),
            Proto::Udp => None,
        };
        Ok(Snapshot {
            reuse_address: getsockopt(fd, sockopt::ReuseAddr)
                .map_err(|e| read("reuse_address", e))?,
            free_bind: getsockopt(fd, sockopt::IpFreebind).map_err(|e| read("free_bind", e))?,
            tcp,
        })
    }

    /// Puts the options of `fd` back as they were when this snapshot was taken, setting only
    /// those that differ now.
    pub fn restore(&self, fd: &OwnedFd, addr: &ListenAddr) -> Result<(), OptionError> {
        let now = Snapshot::take(fd, addr)?;
        if now.reuse_address != self.reuse_address {
            let on = self.reuse_address;
            set(fd, "reuse_address", sockopt::ReuseAddr, &on, flag(on))?;
        }
        if now.free_bind != self.free_bind {
            let on = self.free_bind;
            set(fd, "free_bind", sockopt::IpFreebind, &on, flag(on))?;
        }
        if let (Some(was), Some(is)) = (self.tcp, now.tcp) {
            let (keepalive, defer_accept, fast_open) = was;
            if is.0 != keepalive {
                set(
                    fd,
                    "keepalive",
                    sockopt::KeepAlive,
                    &keepalive,
                    flag(keepalive),
                )?;
            }
            // TCP_DEFER_ACCEPT reads back as the seconds of the retransmissions it was rounded
            // to, which setting again gives the same count.
            if is.1 != defer_accept {
                set_int(fd, "defer_accept", libc::TCP_DEFER_ACCEPT, defer_accept)?;
            }
            if is.2 != fast_open {
                set_int(fd, "fast_open", libc::TCP_FASTOPEN, fast_open)?;
            }
        }
        Ok(())
    }
}
