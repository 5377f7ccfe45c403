//! Creating and inspecting the listening IP sockets.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, Backlog, SockFlag, SockType, SockaddrLike, SockaddrStorage, sockopt,
};

use crate::config::address::{ListenAddr, Proto};

/// Creates a socket for `addr` and binds it: TCP sockets get SO_REUSEADDR (so a restart
/// does not wait out TIME_WAIT) and are put in listening state with `backlog`; IPv6
/// sockets get IPV6_V6ONLY, so `0.0.0.0:80` and `[::]:80` can both be bound.
pub fn bind(addr: &ListenAddr, backlog: u32) -> Result<OwnedFd, Errno> {
    let family = if addr.addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let kind = match addr.proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Datagram,
    };
    let fd = socket::socket(family, kind, SockFlag::SOCK_CLOEXEC, None)?;
    if addr.proto == Proto::Tcp {
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    if family == AddressFamily::Inet6 {
        socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr.addr))?;
    if addr.proto == Proto::Tcp {
        listen(&fd, backlog)?;
    }
    Ok(fd)
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

    #[test]
    fn binds_and_reads_back_tcp_and_udp() {
        let tcp = bind(
            &ListenAddr {
                proto: Proto::Tcp,
                addr: "127.0.0.1:0".parse().unwrap(),
            },
            16,
        )
        .unwrap();
        let got = local_addr(&tcp).unwrap();
        assert_eq!(got.proto, Proto::Tcp);
        assert!(is_listening(&tcp));
        let udp = bind(
            &ListenAddr {
                proto: Proto::Udp,
                addr: "[::1]:0".parse().unwrap(),
            },
            16,
        )
        .unwrap();
        let got = local_addr(&udp).unwrap();
        assert_eq!((got.proto, got.addr.is_ipv6()), (Proto::Udp, true));
        assert!(!is_listening(&udp));
        assert!(socket::getsockopt(&udp, sockopt::Ipv6V6Only).unwrap());
    }
}
