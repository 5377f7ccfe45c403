//! The two rules a socket must pass before start-up hands out a socket it did not bind:
//!
//! * it is exactly the socket portbinder would have bound for the address ([`exact`]): the
//!   same family, type and protocol, bound to the same address and port, listening (TCP) or
//!   bound and unconnected (UDP), without SO_REUSEPORT, IPv6-only or dual-stack as
//!   configured ([`ipv6_only`]); the
//!   binding's other options are then checked or set as on every adopted socket
//!   (serve/options/);
//! * whoever holds it is inside the binding's trust domain ([`grants`]: every holder's
//!   kernel credentials pass the binding's access rules), unless only a privileged process
//!   could have bound its port ([`is_privileged`]: below net.ipv4.ip_unprivileged_port_start)
//!   and at least one holder is one the binding grants (src/serve/setup/recover/examination.rs):
//!   then the others are a former member or a process it was passed to, and the recovery is
//!   logged as a warning; a privileged port that no granted process holds is another
//!   server's and is never taken.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{SockType, SockaddrStorage, getpeername, getsockopt, sockopt};
use nix::sys::stat::{SFlag, fstat};

use crate::config::Binding;
use crate::config::address::{ListenAddr, Proto};
use crate::serve::access;
use crate::serve::setup::pinned::Credentials;
use crate::serve::setup::socket;
use crate::serve::sys;

/// The kernel's default for net.ipv4.ip_unprivileged_port_start (and the value before the
/// setting existed, Linux 4.11).
const DEFAULT_PORT_START: u16 = 1024;

/// net.ipv4.ip_unprivileged_port_start of this network namespace: binding a port below it
/// needs CAP_NET_BIND_SERVICE (it applies to IPv6 too).
pub fn port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_PORT_START)
}

/// Whether this process has CAP_SYS_PTRACE in effect: whether it may read any process's
/// descriptors in /proc and take them (unless a security module or the other process's
/// capabilities say otherwise).
pub fn can_ptrace() -> bool {
    caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_PTRACE,
    )
    .unwrap_or(false)
}

/// Whether only a privileged process can bind `port` here.
pub fn is_privileged(port: u16, port_start: u16) -> bool {
    port < port_start
}

/// Whether `binding` would grant a process with these credentials, as the serve loop
/// decides for a peer (src/serve/access.rs); `Err` holds the reason.
pub fn grants(binding: &Binding, creds: &Credentials) -> Result<(), String> {
    access::decide(binding, creds.uid, creds.gid, &creds.groups)
}

/// How a taken descriptor differs from the socket looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotExact {
    /// It is not the socket with that inode: the holder closed the descriptor and reused its
    /// number after its link was read.
    OtherFile,
    /// It is that socket, but not what portbinder binds for the address: a description.
    Socket(String),
}

/// Checks that `fd` is the socket `inode` and exactly what start-up binds for `want`, with
/// IPV6_V6ONLY `ipv6_only` (for IPv6).
pub fn exact(fd: &OwnedFd, want: &ListenAddr, inode: u64, ipv6_only: bool) -> Result<(), NotExact> {
    let stat = fstat(fd).map_err(|_| NotExact::OtherFile)?;
    let is_socket = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFSOCK;
    if !is_socket || stat.st_ino != inode {
        return Err(NotExact::OtherFile);
    }
    let int = |level, name| sys::int_sockopt(fd.as_fd(), level, name).ok();
    let family = if want.addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let (kind, protocol, proto_name) = match want.proto {
        Proto::Tcp => (SockType::Stream, libc::IPPROTO_TCP, "TCP"),
        Proto::Udp => (SockType::Datagram, libc::IPPROTO_UDP, "UDP"),
    };
    let differs = |what: String| Err(NotExact::Socket(what));
    if int(libc::SOL_SOCKET, libc::SO_DOMAIN) != Some(family) {
        return differs("of another address family".to_owned());
    }
    if getsockopt(fd, sockopt::SockType).ok() != Some(kind) {
        return differs(format!("not a {proto_name} socket"));
    }
    match int(libc::SOL_SOCKET, libc::SO_PROTOCOL) {
        Some(p) if p == protocol => {}
        other => return differs(format!("of protocol {other:?}, not {proto_name}")),
    }
    match socket::local_addr(fd) {
        Some(found) if found == *want => {}
        Some(found) => return differs(format!("bound to {found}")),
        None => return differs("not bound".to_owned()),
    }
    match want.proto {
        Proto::Tcp if !socket::is_listening(fd) => return differs("not listening".to_owned()),
        Proto::Udp => match getpeername::<SockaddrStorage>(fd.as_raw_fd()) {
            Err(Errno::ENOTCONN) => {}
            _ => return differs("connected to a peer".to_owned()),
        },
        Proto::Tcp => {}
    }
    // portbinder never sets SO_REUSEPORT: with it, any process of the socket's owner could
    // bind more sockets to the address and take a share of its connections.
    if getsockopt(fd, sockopt::ReusePort).unwrap_or(true) {
        return differs(
            "a socket with SO_REUSEPORT on, which lets others bind its address too".to_owned(),
        );
    }
    // A dual-stack socket also takes the IPv4 port; an IPv6-only one leaves it out.
    if want.addr.is_ipv6() {
        match getsockopt(fd, sockopt::Ipv6V6Only) {
            Ok(has) if has == ipv6_only => {}
            Ok(true) => {
                return differs(
                    "an IPv6-only socket, where the binding's `ipv6_only = false` wants a \
                     dual-stack one"
                        .to_owned(),
                );
            }
            _ => return differs("a dual-stack IPv6 socket (IPV6_V6ONLY off)".to_owned()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, UdpSocket};

    use nix::sys::socket::{AddressFamily, Backlog, SockFlag, bind, listen, setsockopt};
    use nix::unistd::{Gid, Uid};

    use crate::config::ids::{GroupId, IdRange};

    fn inode(fd: &OwnedFd) -> u64 {
        fstat(fd).unwrap().st_ino
    }

    fn binding() -> Binding {
        Binding {
            name: "http".into(),
            listen: vec!["127.0.0.1:80".parse().unwrap()],
            backlog: 16,
            group: GroupId {
                name: "www-data".into(),
                gid: Gid::from_raw(33),
            },
            mode: 0o660,
            allow_users: vec![IdRange::single(Uid::from_raw(1000))],
            allow_groups: vec![IdRange::single(Gid::from_raw(33))],
            options: Default::default(),
        }
    }

    /// A socket bound as start-up binds one (the options that matter here: IPV6_V6ONLY).
    fn bound(want: &ListenAddr, ipv6_only: bool) -> OwnedFd {
        let fd = socket::create(want).unwrap();
        if want.addr.is_ipv6() {
            setsockopt(&fd, sockopt::Ipv6V6Only, &ipv6_only).unwrap();
        }
        socket::bind(&fd, want, 16).unwrap();
        fd
    }

    /// An address with port 0 (the kernel picks one), which configurations cannot hold.
    fn any_port(proto: Proto, addr: &str) -> ListenAddr {
        ListenAddr {
            proto,
            addr: addr.parse().unwrap(),
        }
    }

    fn creds(uid: u32, gid: u32, groups: &[u32]) -> Credentials {
        Credentials {
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(gid),
            groups: groups.iter().copied().map(Gid::from_raw).collect(),
        }
    }

    #[test]
    fn holders_are_judged_as_the_serve_loop_judges_peers() {
        let b = binding();
        assert!(grants(&b, &creds(33, 33, &[33])).is_ok());
        assert!(
            grants(&b, &creds(1, 1, &[33])).is_ok(),
            "supplementary group"
        );
        assert!(grants(&b, &creds(1000, 1000, &[])).is_ok(), "allowed user");
        let reason = grants(&b, &creds(0, 0, &[0])).unwrap_err();
        assert!(
            reason.contains("uid 0 may not fetch binding `http`"),
            "{reason}"
        );
        assert!(is_privileged(80, 1024) && !is_privileged(1024, 1024) && !is_privileged(80, 0));
    }

    #[test]
    fn the_bindings_own_kind_of_socket_is_exact() {
        let want = any_port(Proto::Tcp, "127.0.0.1:0");
        let fd = bound(&want, true);
        let want = socket::local_addr(&fd).unwrap();
        assert_eq!(exact(&fd, &want, inode(&fd), true), Ok(()));
        assert_eq!(
            exact(&fd, &want, inode(&fd) + 1, true),
            Err(NotExact::OtherFile)
        );
        let udp_want = any_port(Proto::Udp, "[::1]:0");
        let udp = bound(&udp_want, true);
        let udp_want = socket::local_addr(&udp).unwrap();
        assert_eq!(exact(&udp, &udp_want, inode(&udp), true), Ok(()));
        // `ipv6_only = false` on [::]: a dual-stack socket is the binding's.
        let dual_want = any_port(Proto::Tcp, "[::]:0");
        let dual = bound(&dual_want, false);
        let dual_want = socket::local_addr(&dual).unwrap();
        assert_eq!(exact(&dual, &dual_want, inode(&dual), false), Ok(()));
    }

    #[test]
    fn sockets_portbinder_would_not_bind_are_told_apart() {
        // Not listening: std binds and listens, so take a UDP socket for a TCP address.
        let udp = OwnedFd::from(UdpSocket::bind("127.0.0.1:0").unwrap());
        let addr = socket::local_addr(&udp).unwrap().addr;
        let tcp_want = ListenAddr {
            proto: Proto::Tcp,
            addr,
        };
        assert_eq!(
            exact(&udp, &tcp_want, inode(&udp), true),
            Err(NotExact::Socket("not a TCP socket".into()))
        );
        // A dual-stack IPv6 listener (on the wildcard: binding a specific IPv6 address makes
        // the kernel set IPV6_V6ONLY).
        let dual = nix::sys::socket::socket(
            AddressFamily::Inet6,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        setsockopt(&dual, sockopt::Ipv6V6Only, &false).unwrap();
        let any: std::net::SocketAddr = "[::]:0".parse().unwrap();
        bind(dual.as_raw_fd(), &SockaddrStorage::from(any)).unwrap();
        listen(&dual, Backlog::new(8).unwrap()).unwrap();
        let want = socket::local_addr(&dual).unwrap();
        assert_eq!(
            exact(&dual, &want, inode(&dual), true),
            Err(NotExact::Socket(
                "a dual-stack IPv6 socket (IPV6_V6ONLY off)".into()
            ))
        );
        // SO_REUSEPORT, which portbinder never sets.
        let shared = socket::create(&any_port(Proto::Tcp, "127.0.0.1:0")).unwrap();
        setsockopt(&shared, sockopt::ReusePort, &true).unwrap();
        socket::bind(&shared, &any_port(Proto::Tcp, "127.0.0.1:0"), 8).unwrap();
        let want = socket::local_addr(&shared).unwrap();
        assert_eq!(
            exact(&shared, &want, inode(&shared), true),
            Err(NotExact::Socket(
                "a socket with SO_REUSEPORT on, which lets others bind its address too".into()
            ))
        );
        // Connected UDP.
        let connected = UdpSocket::bind("127.0.0.1:0").unwrap();
        connected.connect("127.0.0.1:9").unwrap();
        let connected = OwnedFd::from(connected);
        let want = socket::local_addr(&connected).unwrap();
        assert_eq!(
            exact(&connected, &want, inode(&connected), true),
            Err(NotExact::Socket("connected to a peer".into()))
        );
        // Another port.
        let listener = OwnedFd::from(TcpListener::bind("127.0.0.1:0").unwrap());
        let mut other = socket::local_addr(&listener).unwrap();
        other
            .addr
            .set_port(other.addr.port().wrapping_add(1).max(1));
        let found = exact(&listener, &other, inode(&listener), true).unwrap_err();
        assert!(
            matches!(&found, NotExact::Socket(s) if s.starts_with("bound to tcp://127.0.0.1:")),
            "{found:?}"
        );
    }
}
