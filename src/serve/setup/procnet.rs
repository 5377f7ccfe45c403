//! The kernel's socket tables of this network namespace, `/proc/self/net/{tcp,tcp6,udp,udp6}`:
//! which sockets are bound to an address, by inode. Read at start-up, when an address is in
//! use, to tell whether exactly the socket a binding would have takes it (setup/recover/).
//!
//! Each line is `sl local rem st tx:rx tr:when retrnsmt uid timeout inode …`, addresses as
//! hexadecimal words in the kernel's byte order with a hexadecimal port: `0100007F:0050` is
//! 127.0.0.1:80 on a little-endian machine.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::config::address::{ListenAddr, Proto};

/// `TCP_LISTEN`: a listening TCP socket (in both readers of the socket table, this one and
/// setup/sockdiag.rs).
pub(super) const TCP_LISTEN: u8 = 0x0A;
/// `TCP_CLOSE`: the state of a UDP socket that is bound and not connected.
pub(super) const UDP_UNCONNECTED: u8 = 0x07;

/// One line of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The local address and port.
    pub local: SocketAddr,
    /// The remote address and port (unspecified, port 0, unless connected).
    pub remote: SocketAddr,
    /// The kernel's state number (`TCP_LISTEN` is 0x0A).
    pub state: u8,
    /// The socket's inode number (`socket:[INODE]` in /proc/PID/fd); 0 for sockets in
    /// TIME_WAIT and others no descriptor refers to.
    pub inode: u64,
}

/// The table that lists sockets like `want`.
pub fn table_path(want: &ListenAddr) -> &'static str {
    match (want.proto, want.addr.is_ipv4()) {
        (Proto::Tcp, true) => "/proc/self/net/tcp",
        (Proto::Tcp, false) => "/proc/self/net/tcp6",
        (Proto::Udp, true) => "/proc/self/net/udp",
        (Proto::Udp, false) => "/proc/self/net/udp6",
    }
}

/// The inodes of the sockets of this network namespace that are bound to exactly `want`'s
/// IP address and port, in the state a binding's socket has: listening (TCP), or bound and
/// not connected (UDP). Several inodes mean several sockets (SO_REUSEPORT). The tests' oracle
/// for both readers: recovery reads each table once for every address, with [`read`].
#[cfg(test)]
pub fn bound_to(want: &ListenAddr) -> io::Result<BTreeSet<u64>> {
    Ok(matching(
        &read(table_path(want), want.addr.is_ipv6())?,
        want,
    ))
}

/// The entries of the table at `path` (`v6`: a tcp6/udp6 table). It lists every socket of
/// the network namespace, connections included: read it once for all addresses.
pub fn read(path: &str, v6: bool) -> io::Result<Vec<Entry>> {
    Ok(parse(&std::fs::read_to_string(path)?, v6))
}

/// The inodes in `entries` that [`bound_to`] reports for `want`.
pub fn matching(entries: &[Entry], want: &ListenAddr) -> BTreeSet<u64> {
    entries
        .iter()
        .filter(|e| e.inode != 0 && e.local.ip() == want.addr.ip())
        .filter(|e| e.local.port() == want.addr.port())
        .filter(|e| match want.proto {
            Proto::Tcp => e.state == TCP_LISTEN,
            Proto::Udp => e.state == UDP_UNCONNECTED && e.remote.port() == 0,
        })
        .map(|e| e.inode)
        .collect()
}

/// The entries of a table's text (`v6`: a tcp6/udp6 table). The header and lines that do not
/// parse are skipped: a line the kernel wrote is never half a socket.
pub fn parse(text: &str, v6: bool) -> Vec<Entry> {
    text.lines().skip(1).filter_map(|l| entry(l, v6)).collect()
}

fn entry(line: &str, v6: bool) -> Option<Entry> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
    if fields.len() < 10 {
        return None;
    }
    Some(Entry {
        local: address(fields[1], v6)?,
        remote: address(fields[2], v6)?,
        state: u8::from_str_radix(fields[3], 16).ok()?,
        inode: fields[9].parse().ok()?,
    })
}

/// `ADDR:PORT` in the table's hexadecimal: the address as 32-bit words printed in the
/// machine's byte order (one for IPv4, four for IPv6), the port as a plain number.
fn address(text: &str, v6: bool) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words = |n: usize| -> Option<Vec<u8>> {
        if ip.len() != 8 * n || !ip.is_ascii() {
            return None;
        }
        let mut bytes = Vec::with_capacity(4 * n);
        for i in 0..n {
            let word = u32::from_str_radix(&ip[8 * i..8 * i + 8], 16).ok()?;
            bytes.extend_from_slice(&word.to_ne_bytes());
        }
        Some(bytes)
    };
    let ip = if v6 {
        let bytes: [u8; 16] = words(4)?.try_into().ok()?;
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        let bytes: [u8; 4] = words(1)?.try_into().ok()?;
        IpAddr::V4(Ipv4Addr::from(bytes))
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::os::unix::fs::MetadataExt;

    fn inode_of(fd: &impl std::os::fd::AsRawFd) -> u64 {
        std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .unwrap()
            .ino()
    }

    /// The word of an IPv4 address as this machine's kernel prints it.
    fn word(ip: [u8; 4]) -> String {
        format!("{:08X}", u32::from_ne_bytes(ip))
    }

    #[test]
    fn lines_in_the_kernels_format_parse() {
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
        let v4 = format!(
            "{header}   0: {}:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0\n   1: garbage\n",
            word([127, 0, 0, 1])
        );
        let entries = parse(&v4, false);
        assert_eq!(
            entries,
            [Entry {
                local: "127.0.0.1:80".parse().unwrap(),
                remote: "0.0.0.0:0".parse().unwrap(),
                state: TCP_LISTEN,
                inode: 4242,
            }]
        );
        let loopback6 = [0, 0, 0, 1u32.to_be()]
            .iter()
            .map(|w| format!("{:08X}", w))
            .collect::<String>();
        let v6 = format!(
            "{header}   0: {loopback6}:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000   33        0 77 2 0\n"
        );
        let entries = parse(&v6, true);
        assert_eq!(entries[0].local, "[::1]:53".parse().unwrap());
        assert_eq!((entries[0].state, entries[0].inode), (UDP_UNCONNECTED, 77));
    }

    #[test]
    fn only_the_exact_address_in_the_bindings_state_matches() {
        let tcp: ListenAddr = "tcp://127.0.0.1:80".parse().unwrap();
        let e = |local: &str, state, inode| Entry {
            local: local.parse().unwrap(),
            remote: "0.0.0.0:0".parse().unwrap(),
            state,
            inode,
        };
        let entries = [
            e("127.0.0.1:80", TCP_LISTEN, 1),
            e("127.0.0.1:80", 0x01, 2),         // an accepted connection
            e("0.0.0.0:80", TCP_LISTEN, 3),     // another address
            e("127.0.0.1:8080", TCP_LISTEN, 4), // another port
            e("127.0.0.1:80", TCP_LISTEN, 0),   // no descriptor
        ];
        assert_eq!(matching(&entries, &tcp), BTreeSet::from([1]));
        let udp: ListenAddr = "udp://127.0.0.1:80".parse().unwrap();
        let mut connected = e("127.0.0.1:80", 0x01, 6);
        connected.remote = "127.0.0.1:999".parse().unwrap();
        let entries = [e("127.0.0.1:80", UDP_UNCONNECTED, 5), connected];
        assert_eq!(matching(&entries, &udp), BTreeSet::from([5]));
    }

    #[test]
    fn a_real_listener_and_datagram_socket_are_found_by_inode() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _conn = TcpStream::connect(addr).unwrap();
        let want = ListenAddr {
            proto: Proto::Tcp,
            addr,
        };
        assert_eq!(
            bound_to(&want).unwrap(),
            BTreeSet::from([inode_of(&listener)])
        );

        let udp = UdpSocket::bind("[::1]:0").unwrap();
        let want = ListenAddr {
            proto: Proto::Udp,
            addr: udp.local_addr().unwrap(),
        };
        assert_eq!(bound_to(&want).unwrap(), BTreeSet::from([inode_of(&udp)]));
        udp.connect("[::1]:9").unwrap();
        assert!(bound_to(&want).unwrap().is_empty(), "a connected socket");
    }
}
