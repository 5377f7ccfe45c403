//! The kernel's socket table through sock_diag(7) (NETLINK_SOCK_DIAG, `inet_diag`): the
//! listening TCP or unconnected UDP sockets of this network namespace, with their inodes.
//!
//! Asked for listening TCP sockets only, the kernel walks its listening hash and nothing
//! else, so the answer costs the same on a server with a hundred thousand connections as on
//! an idle one, where /proc/net/tcp lists every connection (setup/procnet.rs, the fallback
//! when a kernel has no inet_diag).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};

use crate::config::address::Proto;
use crate::serve::setup::procnet::{Entry, TCP_LISTEN, UDP_UNCONNECTED};

/// `SOCK_DIAG_BY_FAMILY`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLMSG_ERROR`, `NLMSG_DONE`.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// `NLM_F_REQUEST | NLM_F_DUMP`.
const DUMP_REQUEST: u16 = 0x1 | 0x300;
/// `struct nlmsghdr`, `struct inet_diag_req_v2`, `struct inet_diag_msg`.
const HEADER: usize = 16;
const REQUEST: usize = 56;
const MESSAGE: usize = 72;

/// The sockets of `proto` and family (`v6`) in the state a binding's socket has: listening
/// (TCP) or unconnected (UDP).
pub fn table(proto: Proto, v6: bool) -> io::Result<Vec<Entry>> {
    let sock = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    sendto(
        sock.as_raw_fd(),
        &request(proto, v6),
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    let mut entries = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let len = recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty())?;
        if len == 0 || !messages(&buf[..len], &mut entries)? {
            return Ok(entries);
        }
    }
}

/// The dump request: one `nlmsghdr` and one `inet_diag_req_v2` asking for every socket of
/// the family and protocol in the binding's state.
fn request(proto: Proto, v6: bool) -> Vec<u8> {
    let (protocol, state) = match proto {
        Proto::Tcp => (libc::IPPROTO_TCP, TCP_LISTEN),
        Proto::Udp => (libc::IPPROTO_UDP, UDP_UNCONNECTED),
    };
    let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    let mut out = Vec::with_capacity(HEADER + REQUEST);
    out.extend_from_slice(&((HEADER + REQUEST) as u32).to_ne_bytes());
    out.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    out.extend_from_slice(&DUMP_REQUEST.to_ne_bytes());
    out.extend_from_slice(&[0; 8]); // sequence number, port id
    out.extend_from_slice(&[family as u8, protocol as u8, 0, 0]); // family, protocol, ext, pad
    out.extend_from_slice(&(1u32 << state).to_ne_bytes());
    out.resize(HEADER + REQUEST, 0); // the socket id: no filter
    out
}

/// Appends the sockets of one datagram of the answer to `entries`; `false` once the dump is
/// done. An error message from the kernel is returned as its errno.
fn messages(mut data: &[u8], entries: &mut Vec<Entry>) -> io::Result<bool> {
    let u32_at = |d: &[u8], at: usize| u32::from_ne_bytes(d[at..at + 4].try_into().unwrap());
    while data.len() >= HEADER {
        let len = u32_at(data, 0) as usize;
        if len < HEADER || len > data.len() {
            return Err(io::Error::other("sock_diag: a truncated message"));
        }
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        let body = &data[HEADER..len];
        match kind {
            NLMSG_DONE => return Ok(false),
            NLMSG_ERROR => {
                let errno =
                    i32::from_ne_bytes(body.get(..4).unwrap_or(&[0; 4]).try_into().unwrap());
                return Err(io::Error::from_raw_os_error(errno.saturating_neg()));
            }
            SOCK_DIAG_BY_FAMILY if body.len() >= MESSAGE => entries.push(entry(body)),
            _ => {}
        }
        // Messages are aligned to 4 bytes.
        data = data.get((len + 3) & !3..).unwrap_or(&[]);
    }
    Ok(true)
}

/// One `inet_diag_msg`: family, state, timer, retransmits, then the socket id (ports and
/// addresses in network byte order), expires, queues, uid and inode.
fn entry(msg: &[u8]) -> Entry {
    let v6 = i32::from(msg[0]) == libc::AF_INET6;
    let address = |at: usize| -> IpAddr {
        if v6 {
            let bytes: [u8; 16] = msg[at..at + 16].try_into().unwrap();
            IpAddr::V6(Ipv6Addr::from(bytes))
        } else {
            let bytes: [u8; 4] = msg[at..at + 4].try_into().unwrap();
            IpAddr::V4(Ipv4Addr::from(bytes))
        }
    };
    let port = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
    Entry {
        local: SocketAddr::new(address(8), port(4)),
        remote: SocketAddr::new(address(24), port(6)),
        state: msg[1],
        inode: u64::from(u32::from_ne_bytes(msg[68..72].try_into().unwrap())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::net::{TcpListener, TcpStream, UdpSocket};

    use crate::config::address::ListenAddr;
    use crate::serve::setup::procnet;

    fn inode_of(fd: &impl std::os::fd::AsFd) -> u64 {
        nix::sys::stat::fstat(fd).unwrap().st_ino
    }

    #[test]
    fn listeners_and_datagram_sockets_are_found_as_proc_net_finds_them() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _conn = TcpStream::connect(addr).unwrap();
        let want = ListenAddr {
            proto: Proto::Tcp,
            addr,
        };
        let entries = table(Proto::Tcp, false).unwrap();
        assert!(entries.iter().all(|e| e.state == TCP_LISTEN), "{entries:?}");
        let inode = inode_of(&listener);
        assert_eq!(procnet::matching(&entries, &want), BTreeSet::from([inode]));
        assert_eq!(procnet::bound_to(&want).unwrap(), BTreeSet::from([inode]));

        let udp = UdpSocket::bind("[::1]:0").unwrap();
        let want = ListenAddr {
            proto: Proto::Udp,
            addr: udp.local_addr().unwrap(),
        };
        let entries = table(Proto::Udp, true).unwrap();
        assert_eq!(
            procnet::matching(&entries, &want),
            BTreeSet::from([inode_of(&udp)])
        );
        udp.connect("[::1]:9").unwrap();
        let entries = table(Proto::Udp, true).unwrap();
        assert!(
            procnet::matching(&entries, &want).is_empty(),
            "a connected socket"
        );
    }

    #[test]
    fn the_answer_is_parsed_to_its_end_and_errors_are_errnos() {
        let mut done = vec![0u8; HEADER + 4];
        done[..4].copy_from_slice(&((HEADER + 4) as u32).to_ne_bytes());
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        assert!(!messages(&done, &mut Vec::new()).unwrap());
        let mut error = done.clone();
        error[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        error[HEADER..HEADER + 4].copy_from_slice(&(-libc::EINVAL).to_ne_bytes());
        let e = messages(&error, &mut Vec::new()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        let mut truncated = done.clone();
        truncated[..4].copy_from_slice(&100u32.to_ne_bytes());
        assert!(messages(&truncated, &mut Vec::new()).is_err());
    }
}
