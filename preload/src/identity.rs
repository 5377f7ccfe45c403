//! What makes a descriptor the granted socket rather than whatever now has its number.

use std::net::SocketAddr;

use libc::c_int;

use crate::sys;

/// The kind of socket a descriptor refers to: SO_DOMAIN, SO_TYPE and SO_PROTOCOL, so that a
/// TCP socket is never mistaken for SCTP or MPTCP, nor IPv4 for IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    /// AF_INET or AF_INET6.
    pub domain: c_int,
    /// SOCK_STREAM, SOCK_DGRAM…
    pub kind: c_int,
    /// IPPROTO_TCP, IPPROTO_UDP…
    pub protocol: c_int,
}

impl Kind {
    /// The kind of socket `fd` is, `None` if it is not a socket.
    pub fn of(fd: c_int) -> Option<Kind> {
        Some(Kind {
            domain: sys::socket_option(fd, libc::SO_DOMAIN)?,
            kind: sys::socket_option(fd, libc::SO_TYPE)?,
            protocol: sys::socket_option(fd, libc::SO_PROTOCOL)?,
        })
    }
}

/// A granted socket, as recorded at load: its file (device and inode: one socket, however
/// many descriptors and processes hold it), its kind and its local address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// st_dev and st_ino.
    pub file: (u64, u64),
    /// Domain, type and protocol.
    pub kind: Kind,
    /// getsockname.
    pub local: SocketAddr,
}

impl Identity {
    /// The identity of the socket at `fd`; `None` if `fd` is not an IPv4 or IPv6 socket.
    pub fn of(fd: c_int) -> Option<Identity> {
        Some(Identity {
            file: sys::socket_file(fd)?,
            kind: Kind::of(fd)?,
            local: sys::local_address(fd)?,
        })
    }

    /// Whether `fd` refers to this very socket, checked in full (every field).
    pub fn is_at(&self, fd: c_int) -> bool {
        Identity::of(fd).is_some_and(|found| found == *self)
    }

    /// Whether `fd` refers to this socket's file: one fstat, for the guards of close() and
    /// dup2(), which only decide whether a number still holds the shim's socket (bind checks
    /// every field before it hands the socket out).
    pub fn is_file_at(&self, fd: c_int) -> bool {
        sys::socket_file(fd) == Some(self.file)
    }

    /// Whether a bind of `target` on a socket of kind `kind` asks for this socket: the same
    /// kind and the same address (family, IP, port, and the scope of an IPv6 link-local
    /// address), or, with `any_address`, the same port when this socket's address is a
    /// wildcard (0.0.0.0 or `::`).
    pub fn serves(&self, kind: Kind, target: &SocketAddr, any_address: bool) -> bool {
        kind == self.kind && self.serves_address(target, any_address)
    }

    /// [`Identity::serves`] but for the kind: what can be told without a system call.
    pub fn serves_address(&self, target: &SocketAddr, any_address: bool) -> bool {
        if target.is_ipv4() != self.local.is_ipv4() {
            return false;
        }
        *target == self.local
            || (any_address
                && self.local.ip().is_unspecified()
                && target.port() == self.local.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP4: Kind = Kind {
        domain: libc::AF_INET,
        kind: libc::SOCK_STREAM,
        protocol: libc::IPPROTO_TCP,
    };
    const TCP6: Kind = Kind {
        domain: libc::AF_INET6,
        ..TCP4
    };

    fn granted(local: &str, kind: Kind) -> Identity {
        Identity {
            file: (1, 2),
            kind,
            local: local.parse().unwrap(),
        }
    }

    #[test]
    fn exact_address_unless_any_address_is_asked_for() {
        let wildcard = granted("0.0.0.0:80", TCP4);
        let target = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(wildcard.serves(TCP4, &target("0.0.0.0:80"), false));
        assert!(!wildcard.serves(TCP4, &target("127.0.0.1:80"), false));
        assert!(wildcard.serves(TCP4, &target("127.0.0.1:80"), true));
        assert!(!wildcard.serves(TCP4, &target("127.0.0.1:81"), true));
        // A specific grant never serves the wildcard, nor another address.
        let loopback = granted("127.0.0.1:80", TCP4);
        assert!(!loopback.serves(TCP4, &target("0.0.0.0:80"), true));
        assert!(!loopback.serves(TCP4, &target("10.0.0.1:80"), true));
        // Family, type and protocol must match.
        let v6 = granted("[::]:80", TCP6);
        assert!(v6.serves(TCP6, &target("[::]:80"), false));
        assert!(!v6.serves(TCP4, &target("[::]:80"), false));
        assert!(!wildcard.serves(TCP6, &target("0.0.0.0:80"), true));
        let udp = Kind {
            kind: libc::SOCK_DGRAM,
            protocol: libc::IPPROTO_UDP,
            ..TCP4
        };
        assert!(!wildcard.serves(udp, &target("0.0.0.0:80"), false));
        // The scope of a link-local address is part of it.
        let link = granted("[fe80::1%2]:80", TCP6);
        assert!(link.serves(TCP6, &target("[fe80::1%2]:80"), false));
        assert!(!link.serves(TCP6, &target("[fe80::1%3]:80"), false));
    }
}
