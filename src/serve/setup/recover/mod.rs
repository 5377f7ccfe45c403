//! Step 3 of start-up, when bind(2) finds an address in use: the socket of a daemon that
//! died with no service manager to keep it, recovered from the processes that hold it,
//! before any drop.
//!
//! For every address whose bind(2) failed with EADDRINUSE (bind.rs, after the LISTEN_FDS
//! sockets were adopted), the kernel's socket table (setup/sockdiag.rs, or setup/procnet.rs
//! without inet_diag) tells whether a socket is bound to exactly that address. None: the
//! bind error stands. Several (SO_REUSEPORT): an error, never a guess. One: its holders are
//! found by their `socket:[INODE]` links (setup/holders.rs), then examined (examination.rs):
//! each is pinned with a pidfd and its credentials read from /proc through the pin
//! (setup/pinned.rs), the rules are applied (rules.rs: every holder may fetch the binding, or
//! the port is privileged), and a duplicate is taken with pidfd_getfd(2) and checked by inode
//! and by what it is (rules.rs).
//! Last, the duplicate's cookie must be in the record of the sockets portbinder bound, for
//! that binding and address (setup/record/): another server's socket is never taken,
//! whoever holds it. Once every socket is taken, /proc is scanned again: a process that came
//! to hold one meanwhile, never examined, makes the start fail.
//! bind.rs then adopts the duplicate as it adopts an inherited socket (its options checked),
//! and each recovery is an audit line.
//!
//! Taking another user's descriptor needs CAP_SYS_PTRACE (root has it); without it, on an
//! old kernel, under Yama's ptrace_scope 3 or with the holders out of sight, the start fails
//! as it would have with EADDRINUSE, with the reason (error.rs). Nothing of this runs unless
//! an address is in use, and the sandbox never sees these system calls: they are made here,
//! before the drop.

mod error;
mod examination;
mod impossible;
mod rules;

use std::collections::hash_map::Entry as Slot;
use std::collections::{BTreeSet, HashMap};
use std::os::fd::OwnedFd;

use crate::config::Binding;
use crate::config::address::{ListenAddr, Proto};
use crate::serve::setup::holders;
use crate::serve::setup::record::Record;
use crate::serve::setup::sockdir::SocketDir;
use crate::serve::setup::{procnet, sockdiag};
use examination::{Found, Recovered};

pub use error::{Holder, RecoverError};
pub use examination::Audited;
pub use impossible::Impossible;

/// What start-up recovered, and one audit line per socket, to log once syslog is open.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Per address asked about, in order: its socket, or `None` where no process holds a
    /// socket bound to exactly that address (its bind(2) failed for another reason: a
    /// wildcard socket on the port, one of the daemon's own, or one closed since).
    pub sockets: Vec<Option<OwnedFd>>,
    /// `event=recovered binding=… listen=… inode=… rule=… holders=… ungranted=… pid=… uid=…
    /// gid=… comm=…`, at `info`, or `warn` when some holder is one the binding would not
    /// grant (a privileged port: another privileged program's socket, perhaps).
    pub audit: Vec<Audited>,
}

/// Recovers the socket of each address of `in_use` (whose bind(2) failed with EADDRINUSE)
/// from the processes that hold it, if the record in `socket_dir` says portbinder bound it.
/// `ours` are the inodes of the sockets this process holds itself (inherited ones no binding
/// claimed): an address they take is not recovered. The socket tables and /proc are read
/// once for all the addresses, and /proc once more after every socket is taken.
pub fn from_holders(
    in_use: &[(&Binding, &ListenAddr)],
    ours: &BTreeSet<u64>,
    socket_dir: &SocketDir,
) -> Result<Recovery, RecoverError> {
    let mut tables: HashMap<(Proto, bool), Vec<procnet::Entry>> = HashMap::new();
    let mut found = Vec::new();
    for (slot, &(binding, want)) in in_use.iter().enumerate() {
        let entries = match tables.entry((want.proto, want.addr.is_ipv6())) {
            Slot::Occupied(read) => read.into_mut(),
            Slot::Vacant(unread) => unread.insert(table(want)?),
        };
        let inodes: Vec<u64> = procnet::matching(entries, want)
            .difference(ours)
            .copied()
            .collect();
        match inodes[..] {
            [] => {}
            [inode] => found.push(Found {
                slot,
                binding,
                want,
                inode,
            }),
            _ => {
                return Err(RecoverError::Several {
                    binding: binding.name.clone(),
                    addr: *want,
                    inodes,
                });
            }
        }
    }
    let mut recovery = Recovery {
        sockets: in_use.iter().map(|_| None).collect(),
        audit: Vec::new(),
    };
    if found.is_empty() {
        return Ok(recovery);
    }
    same_pid_namespace()?;
    // Read first, before anything is done with a holder.
    let record = Record::read(socket_dir);
    let inodes = found.iter().map(|f| f.inode).collect();
    let scan_proc = || {
        holders::scan(&inodes, std::process::id() as i32).map_err(|source| RecoverError::Read {
            path: "/proc".to_owned(),
            source,
        })
    };
    let scan = scan_proc()?;
    let port_start = rules::port_start();
    // Processes it cannot look into hide holders from a daemon without CAP_SYS_PTRACE: they
    // may be any other user's. With it, only processes more privileged than the daemon (with
    // capabilities it lacks) or shielded by a security module are out of reach.
    let blind = scan.unreadable > 0 && !rules::can_ptrace();
    let mut taken: Vec<(&Found<'_>, Recovered)> = Vec::new();
    for f in &found {
        let holdings = scan.holders.get(&f.inode).map_or(&[][..], Vec::as_slice);
        let unreadable = || RecoverError::Unreadable {
            binding: f.binding.name.clone(),
            addr: *f.want,
            inode: f.inode,
            unreadable: scan.unreadable,
            why: Box::new(Impossible::diagnose(
                "readlink",
                std::io::Error::from_raw_os_error(libc::EACCES),
            )),
        };
        // On a port anyone may bind, every holder must be known to be one the binding grants.
        if blind && !rules::is_privileged(f.want.addr.port(), port_start) {
            return Err(unreadable());
        }
        match examination::recover_one(f, holdings, port_start, &record)? {
            Some(recovered) => taken.push((f, recovered)),
            // Still bound, by processes out of sight: bind(2) would fail, say why here.
            None if table(f.want)
                .is_ok_and(|t| procnet::matching(&t, f.want).contains(&f.inode)) =>
            {
                if scan.unreadable > 0 {
                    return Err(unreadable());
                }
                return Err(RecoverError::NoHolder {
                    binding: f.binding.name.clone(),
                    addr: *f.want,
                    inode: f.inode,
                });
            }
            // Closed meanwhile: bind.rs tries bind(2) again.
            None => {}
        }
    }
    if !taken.is_empty() {
        let pairs: Vec<_> = taken.iter().map(|(f, r)| (*f, r)).collect();
        examination::unchanged(&pairs, &scan_proc()?)?;
    }
    for (f, recovered) in taken {
        recovery.sockets[f.slot] = Some(recovered.fd);
        recovery.audit.push(recovered.line);
    }
    Ok(recovery)
}

/// The sockets of `want`'s protocol and family in the binding's state: from sock_diag, or
/// from /proc/net on a kernel without inet_diag.
fn table(want: &ListenAddr) -> Result<Vec<procnet::Entry>, RecoverError> {
    let v6 = want.addr.is_ipv6();
    sockdiag::table(want.proto, v6).or_else(|_| {
        let path = procnet::table_path(want);
        procnet::read(path, v6).map_err(|source| RecoverError::Read {
            path: path.to_owned(),
            source,
        })
    })
}

/// Pids in /proc must be this process's pid namespace's, or pidfd_open(2) would pin
/// other processes than the ones /proc describes.
fn same_pid_namespace() -> Result<(), RecoverError> {
    let me = std::process::id();
    let link = std::fs::read_link("/proc/self").map_err(|source| RecoverError::Read {
        path: "/proc/self".to_owned(),
        source,
    })?;
    let proc_self = link.to_string_lossy().into_owned();
    if proc_self.parse::<u32>().ok() == Some(me) {
        return Ok(());
    }
    Err(RecoverError::ProcNamespace { proc_self, pid: me })
}
