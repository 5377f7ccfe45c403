//! Which processes hold a socket: every `/proc/PID/fd/N` whose link reads `socket:[INODE]`.
//!
//! This is discovery only, by number: a pid read here may exit and be reused, and a
//! descriptor may be closed and its number reused, before anyone acts on it. What acts on a
//! holder pins it with a pidfd first and checks again (setup/pinned.rs), and what takes its
//! socket checks the inode of what it got (setup/recover/).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::fd::RawFd;

/// One descriptor of one process that refers to a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Holding {
    /// The process, in the pid namespace of /proc.
    pub pid: i32,
    /// The descriptor's number in that process.
    pub fd: RawFd,
}

/// What a scan of /proc found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Per inode asked about, its holders (one entry per process: its lowest descriptor),
    /// by pid.
    pub holders: BTreeMap<u64, Vec<Holding>>,
    /// Processes whose descriptors could not be listed or read (EACCES: another user's, to
    /// a daemon without CAP_SYS_PTRACE). Any of them may hold one of the sockets.
    pub unreadable: usize,
}

/// The link text of a socket's descriptor, `socket:[INODE]`.
pub fn socket_link(inode: u64) -> String {
    format!("socket:[{inode}]")
}

/// The inode of a `socket:[INODE]` link text.
fn inode_of_link(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Every process except `except` (the daemon itself) holding one of `inodes`. Processes that
/// exit during the scan are skipped; a /proc that cannot be listed is an error.
pub fn scan(inodes: &BTreeSet<u64>, except: i32) -> io::Result<Scan> {
    let mut found = Scan::default();
    for entry in fs::read_dir("/proc")? {
        let Some(pid) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == except {
            continue;
        }
        let fds = match fs::read_dir(format!("/proc/{pid}/fd")) {
            Ok(fds) => fds,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                found.unreadable += 1;
                continue;
            }
            // Exited, or a kernel thread being torn down: nothing it holds matters.
            Err(_) => continue,
        };
        let mut seen = BTreeSet::new();
        let mut denied = false;
        let mut held: Vec<(u64, RawFd)> = Vec::new();
        for fd in fds.flatten() {
            let Some(number) = fd
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<RawFd>().ok())
            else {
                continue;
            };
            match fs::read_link(fd.path()) {
                Ok(link) => {
                    let inode = inode_of_link(link.as_os_str().as_encoded_bytes());
                    if let Some(inode) = inode.filter(|i| inodes.contains(i)) {
                        held.push((inode, number));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => denied = true,
                // Closed meanwhile, or the process exited.
                Err(_) => {}
            }
        }
        found.unreadable += usize::from(denied);
        held.sort();
        for (inode, fd) in held {
            if seen.insert(inode) {
                found
                    .holders
                    .entry(inode)
                    .or_default()
                    .push(Holding { pid, fd });
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn socket_links_are_read_back() {
        assert_eq!(inode_of_link(socket_link(4242).as_bytes()), Some(4242));
        for other in [&b"pipe:[12]"[..], b"socket:[]", b"socket:[12", b"/dev/null"] {
            assert_eq!(inode_of_link(other), None);
        }
    }

    #[test]
    fn this_process_is_found_holding_its_socket_unless_excepted() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let copy = listener.try_clone().unwrap();
        let inode = fs::metadata(format!("/proc/self/fd/{}", listener.as_raw_fd()))
            .unwrap()
            .ino();
        let me = std::process::id() as i32;
        let scan = scan(&BTreeSet::from([inode]), 0).unwrap();
        let lowest = listener.as_raw_fd().min(copy.as_raw_fd());
        assert_eq!(
            scan.holders.get(&inode).map(Vec::as_slice),
            Some(
                &[Holding {
                    pid: me,
                    fd: lowest
                }][..]
            ),
            "one entry per process, its lowest descriptor"
        );
        let without_me = super::scan(&BTreeSet::from([inode]), me).unwrap();
        assert!(without_me.holders.is_empty());
    }
}
