//! Which processes hold a socket: every `/proc/PID/fd/N` whose link reads `socket:[INODE]`,
//! and every `/proc/PID/task/TID/fd/N` of a thread whose descriptor table is not the
//! process's own: a thread that unshared its table (unshare(CLONE_FILES)), or the threads left
//! once the main thread exited (pthread_exit), whose table /proc/PID/fd no longer lists.
//!
//! This is discovery only, by number: a pid read here may exit and be reused, and a
//! descriptor may be closed and its number reused, before anyone acts on it. What acts on a
//! holder pins it with a pidfd first and checks again (setup/pinned.rs), and what takes its
//! socket checks the inode of what it got (setup/recover/).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::fd::RawFd;

use crate::serve::sys;

/// One process that holds a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Holding {
    /// The process, in the pid namespace of /proc.
    pub pid: i32,
    /// The socket's lowest descriptor number in the process's own table (/proc/PID/fd, the
    /// one pidfd_getfd(2) takes from); `None` when only threads with a table of their own, or
    /// the threads left after the main thread exited, hold it.
    pub fd: Option<RawFd>,
}

/// What a scan of /proc found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Per inode asked about, its holders (one entry per process), by pid.
    pub holders: BTreeMap<u64, Vec<Holding>>,
    /// Processes whose descriptors could not be listed or read (EACCES: another user's, to
    /// a daemon without CAP_SYS_PTRACE). Any of them may hold one of the sockets.
    pub unreadable: usize,
}

/// What the descriptor tables of one process (its own and its threads') hold of the sockets
/// looked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tables {
    /// Per inode found, as in [`Holding::fd`].
    pub held: BTreeMap<u64, Option<RawFd>>,
    /// Some table or descriptor could not be read (EACCES): it may hold one of them.
    pub denied: bool,
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

/// A directory entry's name as a number (a pid, a tid, a descriptor).
fn number(entry: &fs::DirEntry) -> Option<i32> {
    entry.file_name().to_str()?.parse().ok()
}

/// Every process except `except` (the daemon itself) holding one of `inodes`. Processes that
/// exit during the scan are skipped; a /proc that cannot be listed is an error.
pub fn scan(inodes: &BTreeSet<u64>, except: i32) -> io::Result<Scan> {
    let mut found = Scan::default();
    for entry in fs::read_dir("/proc")? {
        let Some(pid) = number(&entry?) else {
            continue;
        };
        if pid == except {
            continue;
        }
        let tables = tables(pid, inodes);
        found.unreadable += usize::from(tables.denied);
        for (inode, fd) in tables.held {
            found
                .holders
                .entry(inode)
                .or_default()
                .push(Holding { pid, fd });
        }
    }
    Ok(found)
}

/// What process `pid` holds of `inodes`, in its own table and in its threads' tables that
/// are not that one (each distinct table read once). A process that is gone holds nothing.
pub fn tables(pid: i32, inodes: &BTreeSet<u64>) -> Tables {
    let mut tables = Tables::default();
    let own = read_table(&format!("/proc/{pid}/fd"), inodes, &mut tables.denied);
    for (inode, fd) in own {
        let lowest = tables.held.entry(inode).or_insert(Some(fd));
        *lowest = (*lowest).min(Some(fd));
    }
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        // Exited (or a kernel thread being torn down): nothing it holds matters.
        return tables;
    };
    // Tables already read: the process's own (the main thread's) and every distinct other.
    let mut read = vec![pid];
    for tid in tasks.flatten().filter_map(|t| number(&t)) {
        // kcmp fails (no CONFIG_KCMP, access refused): read the table, to be sure.
        if read
            .iter()
            .any(|&seen| sys::same_fd_table(seen, tid).unwrap_or(false))
        {
            continue;
        }
        read.push(tid);
        let theirs = read_table(
            &format!("/proc/{pid}/task/{tid}/fd"),
            inodes,
            &mut tables.denied,
        );
        for (inode, _) in theirs {
            tables.held.entry(inode).or_insert(None);
        }
    }
    tables
}

/// The descriptors of `inodes` in the table listed at `dir`, as (inode, number); sets
/// `denied` when the table or a descriptor cannot be read for lack of permission.
fn read_table(dir: &str, inodes: &BTreeSet<u64>, denied: &mut bool) -> Vec<(u64, RawFd)> {
    let fds = match fs::read_dir(dir) {
        Ok(fds) => fds,
        Err(e) => {
            *denied |= e.kind() == io::ErrorKind::PermissionDenied;
            // Otherwise exited, or a thread gone meanwhile.
            return Vec::new();
        }
    };
    let mut held = Vec::new();
    for fd in fds.flatten() {
        let Some(fd_number) = number(&fd) else {
            continue;
        };
        match fs::read_link(fd.path()) {
            Ok(link) => {
                let inode = inode_of_link(link.as_os_str().as_encoded_bytes());
                if let Some(inode) = inode.filter(|i| inodes.contains(i)) {
                    held.push((inode, fd_number));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => *denied = true,
            // Closed meanwhile, or the process exited.
            Err(_) => {}
        }
    }
    held
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
                    fd: Some(lowest)
                }][..]
            ),
            "one entry per process, its lowest descriptor"
        );
        let without_me = super::scan(&BTreeSet::from([inode]), me).unwrap();
        assert!(without_me.holders.is_empty());
    }

    #[test]
    fn a_descriptor_moved_to_another_number_is_found_there() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let first = listener.as_raw_fd();
        let inode = fs::metadata(format!("/proc/self/fd/{first}"))
            .unwrap()
            .ino();
        let inodes = BTreeSet::from([inode]);
        let me = std::process::id() as i32;
        assert_eq!(tables(me, &inodes).held.get(&inode), Some(&Some(first)));
        let moved = listener.try_clone().unwrap();
        drop(listener);
        let found = tables(me, &inodes);
        assert_eq!(found.held.get(&inode), Some(&Some(moved.as_raw_fd())));
        assert!(!found.denied);
        drop(moved);
        assert!(tables(me, &inodes).held.is_empty());
    }
}
