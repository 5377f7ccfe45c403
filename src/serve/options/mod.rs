//! A binding's socket options (src/config/options.rs) put on its sockets: on a new one
//! between socket(2) and bind(2), while the daemon still holds its start-up privileges, and
//! on an inherited one (fd store, socket units) as far as the kernel allows on a socket that
//! is bound already. What cannot be made to match is an error that says what to change.
//! Used on both sides of the drop: at start-up, and by a reload (src/serve/reload/), which
//! brings the bound sockets to a binding's new options as an inherited socket is brought to
//! them, with no privilege left (what needs one fails with EPERM and is refused).
//!
//! Every option the binding sets is applied. An inherited socket is also put back to the
//! default of each option that has one (blocking, IPv6-only, no free bind, SO_REUSEADDR on
//! TCP only, no defer, no fast open, no keepalive, no mark, no device), so it is served as
//! the configuration says and not as a previous configuration or a socket unit left it; the
//! keepalive timings and buffer sizes, whose defaults are the kernel's sysctls, are left as
//! they are unless set.
//!
//! The options come in two parts, for a reload that must put back what it changed when a
//! later step fails: [`apply_reversible`] sets those whose earlier value a [`Snapshot`] puts
//! back exactly, [`apply_lasting`] those it cannot, which a reload sets last. [`apply`] is
//! both, in that order.

mod error;
mod fixed;
mod net_admin;
mod shown;
mod snapshot;
mod tcp;

use std::os::fd::OwnedFd;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::socket::sockopt;

use crate::config::SocketOptions;
use crate::config::address::{ListenAddr, Proto};
use error::{failed, flag, set};
use fixed::{device, device_unchanged, ipv6_only};
use net_admin::{buffer, buffer_within_grant, mark};

pub use error::{Made, OptionError};
pub use net_admin::{Buffer, buffer_max};
pub use shown::audit_fields;
pub use snapshot::Snapshot;

/// Gives `fd`, a socket for `addr`, the options of its binding.
pub fn apply(
    fd: &OwnedFd,
    addr: &ListenAddr,
    options: &SocketOptions,
    made: Made,
) -> Result<(), OptionError> {
    apply_reversible(fd, addr, options, made)?;
    apply_lasting(fd, addr, options, made)
}

/// What a reload checks on each socket of a binding before it changes anything: that
/// neither [`apply_reversible`] nor [`apply_lasting`] will set, on this running socket, what
/// the daemon could not put back or needs a privilege for (a device, where a privileged
/// holder changed it; a buffer beyond the sysctl maximum that a holder changed).
pub fn reload_can_apply(fd: &OwnedFd, options: &SocketOptions) -> Result<(), OptionError> {
    device_unchanged(fd, options.bind_to_device.as_deref())?;
    for which in Buffer::BOTH {
        if let Some(bytes) = which.of(options) {
            buffer_within_grant(fd, which, bytes)?;
        }
    }
    Ok(())
}

/// The options whose earlier value a [`Snapshot`] of the socket puts back exactly:
/// SO_REUSEADDR, IP_FREEBIND, keepalive on or off, TCP_DEFER_ACCEPT, TCP_FASTOPEN; with the
/// checks of what a bound socket keeps (IPV6_V6ONLY, the device, the mark), which on an
/// inherited socket change nothing or fail, but for a device a socket has none of (which a
/// reload checks first: [`reload_can_apply`]).
pub fn apply_reversible(
    fd: &OwnedFd,
    addr: &ListenAddr,
    options: &SocketOptions,
    made: Made,
) -> Result<(), OptionError> {
    // An inherited socket is put back to the defaults too; a new one has them already.
    let reset = made == Made::Inherited;
    if addr.addr.is_ipv6() {
        ipv6_only(fd, options.ipv6_only_for(addr), made)?;
    }
    let reuse = options.reuse_address_for(addr.proto);
    if reset || reuse {
        set(fd, "reuse_address", sockopt::ReuseAddr, &reuse, flag(reuse))?;
    }
    if reset || options.free_bind {
        let on = options.free_bind;
        set(fd, "free_bind", sockopt::IpFreebind, &on, flag(on))?;
    }
    device(fd, options.bind_to_device.as_deref(), made)?;
    mark(fd, options.mark, made)?;
    if addr.proto == Proto::Tcp {
        tcp::tcp_options(fd, options, reset)?;
    }
    Ok(())
}

/// The options whose earlier state a [`Snapshot`] cannot bring back, which a reload sets
/// only once every other step has succeeded: the keepalive timings and the buffers, whose
/// defaults are the kernel's sysctls (a timing that followed its sysctl cannot be made to
/// follow it again, and SO_RCVBUF or SO_SNDBUF fixes a buffer's size for good: the kernel no
/// longer tunes it, nor the buffers of the connections accepted), and the status flags
/// (written with O_NONBLOCK alone, which clears O_APPEND and O_ASYNC: see `nonblocking`).
pub fn apply_lasting(
    fd: &OwnedFd,
    addr: &ListenAddr,
    options: &SocketOptions,
    made: Made,
) -> Result<(), OptionError> {
    if addr.proto == Proto::Tcp {
        tcp::keepalive_timings(fd, options)?;
    }
    for which in Buffer::BOTH {
        if let Some(bytes) = which.of(options) {
            buffer(fd, which, bytes, made)?;
        }
    }
    nonblocking(fd, options.nonblocking)
}

/// The file status flags F_SETFL can change (it ignores the access mode and the creation
/// flags).
const SETTABLE: OFlag = OFlag::O_APPEND
    .union(OFlag::O_ASYNC)
    .union(OFlag::O_DIRECT)
    .union(OFlag::O_NOATIME)
    .union(OFlag::O_NONBLOCK);

/// The status flags of the open file description, which every holder shares: O_NONBLOCK as
/// the binding says, and no other flag F_SETFL sets. A holder may set O_APPEND or O_ASYNC on
/// the socket (the kernel takes both, and F_GETFL reports them), and a listening socket has no
/// use for either: O_APPEND means nothing to a socket, and O_ASYNC would signal the one
/// process F_SETOWN named, for every holder. They are cleared whenever the flags are written,
/// and the flags are never written back as read: after the drop the seccomp filter lets
/// F_SETFL carry O_NONBLOCK alone, and kills the process for any other flag.
fn nonblocking(fd: &OwnedFd, want: bool) -> Result<(), OptionError> {
    let fail = |e| failed("nonblocking", flag(want), e);
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL).map_err(fail)?);
    let wanted = if want {
        OFlag::O_NONBLOCK
    } else {
        OFlag::empty()
    };
    if flags & SETTABLE != wanted {
        fcntl(fd, FcntlArg::F_SETFL(wanted)).map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::setup::socket;
    use nix::sys::socket::getsockopt;

    fn addr(proto: Proto, text: &str) -> ListenAddr {
        ListenAddr {
            proto,
            addr: text.parse().unwrap(),
        }
    }

    fn is_nonblocking(fd: &OwnedFd) -> bool {
        OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL).unwrap()).contains(OFlag::O_NONBLOCK)
    }

    #[test]
    fn a_new_socket_gets_every_option_before_bind() {
        let want = addr(Proto::Tcp, "[::]:0");
        let options = SocketOptions {
            nonblocking: true,
            ipv6_only: false,
            free_bind: true,
            keepalive: true,
            keepalive_idle: Some(30),
            defer_accept: Some(3),
            fast_open: Some(16),
            receive_buffer: Some(100_000),
            ..SocketOptions::default()
        };
        let fd = socket::create(&want).unwrap();
        apply(&fd, &want, &options, Made::Here).unwrap();
        socket::bind(&fd, &want, 16).unwrap();
        assert!(is_nonblocking(&fd));
        assert!(!getsockopt(&fd, sockopt::Ipv6V6Only).unwrap());
        assert!(getsockopt(&fd, sockopt::IpFreebind).unwrap());
        assert!(getsockopt(&fd, sockopt::ReuseAddr).unwrap());
        assert!(getsockopt(&fd, sockopt::KeepAlive).unwrap());
        assert_eq!(getsockopt(&fd, sockopt::TcpKeepIdle).unwrap(), 30);
        assert_eq!(getsockopt(&fd, sockopt::RcvBuf).unwrap(), 200_000);
    }

    #[test]
    fn an_inherited_socket_is_put_back_to_the_defaults() {
        let want = addr(Proto::Tcp, "127.0.0.1:0");
        let fd = socket::create(&want).unwrap();
        let custom = SocketOptions {
            nonblocking: true,
            keepalive: true,
            free_bind: true,
            ..SocketOptions::default()
        };
        apply(&fd, &want, &custom, Made::Here).unwrap();
        socket::bind(&fd, &want, 16).unwrap();
        apply(&fd, &want, &SocketOptions::default(), Made::Inherited).unwrap();
        assert!(!is_nonblocking(&fd));
        assert!(!getsockopt(&fd, sockopt::KeepAlive).unwrap());
        assert!(!getsockopt(&fd, sockopt::IpFreebind).unwrap());
    }

    #[test]
    fn o_append_and_o_async_are_cleared_and_never_written_back() {
        let want = addr(Proto::Tcp, "127.0.0.1:0");
        let fd = socket::create(&want).unwrap();
        socket::bind(&fd, &want, 16).unwrap();
        let tampered = OFlag::O_APPEND | OFlag::O_ASYNC | OFlag::O_NONBLOCK;
        fcntl(&fd, FcntlArg::F_SETFL(tampered)).unwrap();
        apply(&fd, &want, &SocketOptions::default(), Made::Inherited).unwrap();
        let flags = OFlag::from_bits_retain(fcntl(&fd, FcntlArg::F_GETFL).unwrap());
        assert_eq!(flags & SETTABLE, OFlag::empty(), "{flags:?}");
    }

    #[test]
    fn an_inherited_socket_of_the_other_v6only_is_refused_with_the_fix() {
        let want = addr(Proto::Udp, "[::]:0");
        let fd = socket::create(&want).unwrap();
        apply(&fd, &want, &SocketOptions::default(), Made::Here).unwrap();
        socket::bind(&fd, &want, 16).unwrap();
        let dual = SocketOptions {
            ipv6_only: false,
            ..SocketOptions::default()
        };
        let error = apply(&fd, &want, &dual, Made::Inherited).unwrap_err();
        assert_eq!(error.field, "ipv6_only");
        let text = error.to_string();
        assert!(
            text.starts_with("`ipv6_only = false`: the inherited socket has IPV6_V6ONLY 1"),
            "{text}"
        );
        assert!(text.contains("fix: set `ipv6_only = true`"), "{text}");
        assert!(text.contains("BindIPv6Only=both"), "{text}");
    }

    #[test]
    fn a_restored_socket_reads_back_as_it_was_and_not_as_the_defaults() {
        let want = ListenAddr {
            proto: Proto::Tcp,
            addr: "127.0.0.1:0".parse().unwrap(),
        };
        let fd = socket::create(&want).unwrap();
        socket::bind(&fd, &want, 16).unwrap();
        // A holder's own choices, which no configuration says.
        tcp::set_int(&fd, "defer_accept", libc::TCP_DEFER_ACCEPT, 7).unwrap();
        tcp::set_int(&fd, "fast_open", libc::TCP_FASTOPEN, 5).unwrap();
        let before = Snapshot::take(&fd, &want).unwrap();
        let changed = SocketOptions {
            keepalive: true,
            free_bind: true,
            defer_accept: Some(1),
            fast_open: Some(64),
            ..SocketOptions::default()
        };
        apply_reversible(&fd, &want, &changed, Made::Inherited).unwrap();
        assert_ne!(Snapshot::take(&fd, &want).unwrap(), before);
        before.restore(&fd, &want).unwrap();
        assert_eq!(Snapshot::take(&fd, &want).unwrap(), before);
        let tcp = |name| {
            crate::serve::sys::int_sockopt(std::os::fd::AsFd::as_fd(&fd), libc::IPPROTO_TCP, name)
        };
        assert!(tcp(libc::TCP_DEFER_ACCEPT).unwrap() > 0);
        assert_eq!(tcp(libc::TCP_FASTOPEN).unwrap(), 5);
    }
}
