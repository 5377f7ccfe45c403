//! Creating and inspecting the listening IP sockets.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, Backlog, SockFlag, SockType, SockaddrLike, SockaddrStorage, sockopt,
};

use crate::config::address::{ListenAddr, Proto};

/// Creates an unbound socket for `addr`: its family and type, close-on-exec. The binding's
/// options go on it next (src/serve/options/), then [`bind`].
pub fn create(addr: &ListenAddr) -> Result<OwnedFd, Errno> {
    let family = if addr.addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let kind = match addr.proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Datagram,
    };
    socket::socket(family, kind, SockFlag::SOCK_CLOEXEC, None)
}

/// Binds `fd` to `addr` and, for TCP, puts it in listening state with `backlog`.
pub fn bind(fd: &OwnedFd, addr: &ListenAddr, backlog: u32) -> Result<(), Errno> {
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr.addr))?;
    if addr.proto == Proto::Tcp {
        listen(fd, backlog)?;
    }
    Ok(())
}

/// Puts a TCP socket in listening state.
pub fn listen(fd: &impl AsFd, backlog: u32) -> Result<(), Errno> {
    let backlog = i32::try_from(backlog).map_err(|_| Errno::EINVAL)?;
    socket::listen(fd, Backlog::new(backlog)?)
}

/// What a socket is bound to (`None` for anything but a bound IPv4/IPv6 TCP or UDP socket).
pub fn local_addr(fd: &impl AsFd) -> Option<ListenAddr> {
    let proto = match socket::getsockopt(fd, sockopt::SockType).ok()? {
        SockType::Stream => Proto::Tcp,
        SockType::Datagram => Proto::Udp,
        _ => return None,
    };
    let storage: SockaddrStorage = socket::getsockname(fd.as_fd().as_raw_fd()).ok()?;
    let addr = match storage.family()? {
        AddressFamily::Inet => SocketAddr::V4((*storage.as_sockaddr_in()?).into()),
        AddressFamily::Inet6 => SocketAddr::V6((*storage.as_sockaddr_in6()?).into()),
        _ => return None,
    };
    Some(ListenAddr { proto, addr })
}

/// Whether a stream socket is listening (SO_ACCEPTCONN).
pub fn is_listening(fd: &impl AsFd) -> bool {
    socket::getsockopt(fd, sockopt::AcceptConn).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(proto: Proto, addr: &str, v6only: bool) -> OwnedFd {
        let addr = ListenAddr {
            proto,
            addr: addr.parse().unwrap(),
        };
        let fd = create(&addr).unwrap();
        if addr.addr.is_ipv6() {
            socket::setsockopt(&fd, sockopt::Ipv6V6Only, &v6only).unwrap();
        }
        bind(&fd, &addr, 16).unwrap();
        fd
    }

    #[test]
    fn binds_and_reads_back_tcp_and_udp() {
        let tcp = bound(Proto::Tcp, "127.0.0.1:0", true);
        let got = local_addr(&tcp).unwrap();
        assert_eq!(got.proto, Proto::Tcp);
        assert!(is_listening(&tcp));
        let udp = bound(Proto::Udp, "[::1]:0", true);
        let got = local_addr(&udp).unwrap();
        assert_eq!((got.proto, got.addr.is_ipv6()), (Proto::Udp, true));
        assert!(!is_listening(&udp));
        assert!(socket::getsockopt(&udp, sockopt::Ipv6V6Only).unwrap());
    }
}
