//! Listen addresses: `tcp://IP:PORT` (the default scheme) and `udp://IP:PORT`, IPv4 or IPv6.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::str::FromStr;

/// The transport protocol of a listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// A TCP listening socket (`SOCK_STREAM`).
    Tcp,
    /// A bound UDP socket (`SOCK_DGRAM`).
    Udp,
}

impl Proto {
    /// The URL-style scheme used in configuration and logs.
    pub fn scheme(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One address a binding listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenAddr {
    /// TCP or UDP.
    pub proto: Proto,
    /// The local IP address and port.
    pub addr: SocketAddr,
}

/// Why a listen address could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// The text is not `[tcp://|udp://]IP:PORT`.
    #[error(
        "`{0}` is not a listen address: write IPv4:PORT (0.0.0.0:80), [IPv6]:PORT ([::]:443), \
         optionally prefixed with tcp:// or udp://"
    )]
    Syntax(String),
    /// Port 0 asks the kernel for a random port, which cannot be shared by name.
    #[error("`{0}` has port 0: give the port to bind (for example 80)")]
    PortZero(String),
}

impl FromStr for ListenAddr {
    type Err = AddrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (proto, rest) = if let Some(rest) = text.strip_prefix("udp://") {
            (Proto::Udp, rest)
        } else {
            (Proto::Tcp, text.strip_prefix("tcp://").unwrap_or(text))
        };
        let addr: SocketAddr = rest
            .parse()
            .map_err(|_| AddrError::Syntax(text.to_owned()))?;
        if addr.port() == 0 {
            return Err(AddrError::PortZero(text.to_owned()));
        }
        Ok(ListenAddr { proto, addr })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.proto.scheme(), self.addr)
    }
}

impl ListenAddr {
    /// Whether binding both addresses in one network namespace would collide
    /// (`EADDRINUSE`): same protocol, family and port, and the same IP or a wildcard on
    /// either side. IPv6 sockets are bound with `IPV6_V6ONLY`, so they never collide with
    /// IPv4 ones.
    pub fn conflicts_with(&self, other: &ListenAddr) -> bool {
        let (a, b) = (self.addr, other.addr);
        self.proto == other.proto
            && a.port() == b.port()
            && a.is_ipv4() == b.is_ipv4()
            && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
    }

    /// The IPv4 address that an IPv6 socket for this address also takes when it is
    /// dual-stack (IPV6_V6ONLY off): every IPv4 address of the port for `[::]`, `a.b.c.d`
    /// for the IPv4-mapped `[::ffff:a.b.c.d]`, none for any other address.
    pub fn dual_stack_ipv4(&self) -> Option<ListenAddr> {
        let SocketAddr::V6(v6) = self.addr else {
            return None;
        };
        let ip = if v6.ip().is_unspecified() {
            Ipv4Addr::UNSPECIFIED
        } else {
            v6.ip().to_ipv4_mapped()?
        };
        Some(ListenAddr {
            proto: self.proto,
            addr: SocketAddr::V4(SocketAddrV4::new(ip, v6.port())),
        })
    }

    /// [`ListenAddr::conflicts_with`], for sockets whose IPV6_V6ONLY setting is given
    /// (`ipv6_only`, ignored for IPv4): a dual-stack `[::]:80` collides with `0.0.0.0:80`
    /// and `127.0.0.1:80` too.
    pub fn collides_with(
        &self,
        ipv6_only: bool,
        other: &ListenAddr,
        other_ipv6_only: bool,
    ) -> bool {
        let takes =
            |a: &ListenAddr, only: bool| [Some(*a), if only { None } else { a.dual_stack_ipv4() }];
        takes(self, ipv6_only).iter().flatten().any(|a| {
            takes(other, other_ipv6_only)
                .iter()
                .flatten()
                .any(|b| a.conflicts_with(b))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> ListenAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_schemes_and_families() {
        assert_eq!(addr("0.0.0.0:80").to_string(), "tcp://0.0.0.0:80");
        assert_eq!(addr("tcp://[::]:443").to_string(), "tcp://[::]:443");
        assert_eq!(addr("udp://127.0.0.1:53").proto, Proto::Udp);
        assert_eq!(addr("udp://[::1]:53").to_string(), "udp://[::1]:53");
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in [
            "",
            "80",
            "localhost:80",
            "0.0.0.0",
            "::]:80",
            "sctp://0.0.0.0:80",
            "1.2.3.4:70000",
        ] {
            assert!(
                matches!(bad.parse::<ListenAddr>(), Err(AddrError::Syntax(_))),
                "{bad}"
            );
        }
        assert_eq!(
            "0.0.0.0:0".parse::<ListenAddr>(),
            Err(AddrError::PortZero("0.0.0.0:0".into()))
        );
    }

    #[test]
    fn conflicts() {
        assert!(addr("0.0.0.0:80").conflicts_with(&addr("127.0.0.1:80")));
        assert!(addr("127.0.0.1:80").conflicts_with(&addr("tcp://127.0.0.1:80")));
        assert!(!addr("0.0.0.0:80").conflicts_with(&addr("[::]:80")));
        assert!(!addr("0.0.0.0:80").conflicts_with(&addr("udp://0.0.0.0:80")));
        assert!(!addr("127.0.0.1:80").conflicts_with(&addr("127.0.0.2:80")));
        assert!(!addr("0.0.0.0:80").conflicts_with(&addr("0.0.0.0:443")));
        assert!(addr("[::]:80").conflicts_with(&addr("[::1]:80")));
    }

    #[test]
    fn dual_stack_collisions() {
        let any6 = addr("[::]:80");
        assert!(any6.collides_with(false, &addr("0.0.0.0:80"), true));
        assert!(addr("127.0.0.1:80").collides_with(true, &any6, false));
        assert!(!any6.collides_with(true, &addr("0.0.0.0:80"), true));
        assert!(!any6.collides_with(false, &addr("udp://0.0.0.0:80"), true));
        assert!(!any6.collides_with(false, &addr("0.0.0.0:81"), true));
        // Only `[::]` and IPv4-mapped addresses take IPv4 traffic.
        assert!(!addr("[::1]:80").collides_with(false, &addr("127.0.0.1:80"), true));
        let mapped = addr("[::ffff:127.0.0.1]:80");
        assert_eq!(mapped.dual_stack_ipv4(), Some(addr("127.0.0.1:80")));
        assert!(mapped.collides_with(false, &addr("0.0.0.0:80"), true));
        assert!(!mapped.collides_with(false, &addr("127.0.0.2:80"), true));
    }
}
