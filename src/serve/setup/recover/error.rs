//! Why a socket was not recovered from the processes holding it. Each message names the
//! address, the binding and the process, and says why and what to do; bind.rs adds the hint
//! of the failed bind(2) (EADDRINUSE) that led here.

use std::fmt;
use std::io;

use nix::unistd::Uid;

use super::impossible::Impossible;
use crate::config::address::ListenAddr;
use crate::serve::audit::{Spaces, escape_into};
use crate::serve::setup::record::Unrecorded;

/// The process a message is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its pid.
    pub pid: i32,
    /// Its effective uid, when it was read.
    pub uid: Option<Uid>,
    /// Its process name, when it was read (the process chose it: escaped when shown).
    pub comm: Option<Vec<u8>>,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}", self.pid)?;
        let mut details = Vec::new();
        if let Some(uid) = self.uid {
            details.push(format!("uid {uid}"));
        }
        if let Some(comm) = &self.comm {
            let mut shown = String::new();
            escape_into(&mut shown, comm, Spaces::Escape);
            details.push(format!("comm {shown}"));
        }
        if !details.is_empty() {
            write!(f, " ({})", details.join(", "))?;
        }
        Ok(())
    }
}

/// A configured address is held by a socket that start-up did not recover.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// /proc numbers processes of another pid namespace than this process's.
    #[error(
        "cannot look for the processes holding the configured addresses: /proc belongs to \
         another pid namespace (/proc/self is `{proc_self}`, this process is pid {pid}): mount \
         a /proc of this pid namespace (`unshare --pid --fork --mount-proc`), or pass the \
         sockets with LISTEN_FDS"
    )]
    ProcNamespace {
        /// What /proc/self reads.
        proc_self: String,
        /// Our pid.
        pid: u32,
    },
    /// A socket table or /proc could not be read.
    #[error("cannot read {path} to find the sockets on the configured addresses: {source}")]
    Read {
        /// The file or directory.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// Several sockets are bound to the address (SO_REUSEPORT).
    #[error(
        "cannot recover {addr} for binding `{binding}`: {} sockets are bound to it ({}), \
         as SO_REUSEPORT allows, and portbinder will not pick one: stop the processes holding \
         all but one of them",
        inodes.len(), socket_list(inodes)
    )]
    Several {
        /// The binding.
        binding: String,
        /// The address.
        addr: ListenAddr,
        /// The sockets' inodes.
        inodes: Vec<u64>,
    },
    /// The socket is held by no process this daemon can see.
    #[error(
        "cannot recover {addr} for binding `{binding}`: its socket (socket:[{inode}]) is held \
         by no process this daemon can see: they run in a pid namespace it cannot see, or /proc \
         hides them (hidepid=, ProtectProc=); under systemd, `systemctl restart` keeps the \
         sockets in the fd store instead"
    )]
    NoHolder {
        /// The binding.
        binding: String,
        /// The address.
        addr: ListenAddr,
        /// The socket's inode.
        inode: u64,
    },
    /// Processes that may hold the socket could not be looked into.
    #[error(
        "cannot recover {addr} for binding `{binding}`: the descriptors of {unreadable} \
         process(es) could not be read, so who holds its socket (socket:[{inode}]) is not \
         known: {why}"
    )]
    Unreadable {
        /// The binding.
        binding: String,
        /// The address.
        addr: ListenAddr,
        /// The socket's inode.
        inode: u64,
        /// How many processes could not be looked into.
        unreadable: usize,
        /// Why.
        why: Box<Impossible>,
    },
    /// A holder is not one the binding would grant, on a port anyone may bind.
    #[error(
        "not recovering {addr} for binding `{binding}` from {holder}: {reason}; port {} is not \
         privileged (net.ipv4.ip_unprivileged_port_start is {port_start}), so any local user \
         could have bound it, and portbinder recovers such a socket only when every process \
         holding it may fetch the binding: stop that process, or allow its user or group",
        addr.addr.port()
    )]
    Refused {
        /// The binding.
        binding: String,
        /// The address.
        addr: ListenAddr,
        /// The holder the binding would not grant.
        holder: Box<Holder>,
        /// The access decision's reason.
        reason: String,
        /// net.ipv4.ip_unprivileged_port_start.
        port_start: u16,
    },
    /// No process holding the socket is one the binding would grant, on a privileged port:
    /// the socket is another server's, not one the binding's programs got from portbinder.
    #[error(
        "not recovering {addr} for binding `{binding}` from {holder}: {reason}; no process \
         holding its socket may fetch the binding, so it is not a socket the binding's programs \
         got from portbinder but another server's: stop that server, or give the binding \
         another address"
    )]
    Foreign {
        /// The binding.
        binding: String,
        /// The address.
        addr: ListenAddr,
        /// One of the holders.
        holder: Box<Holder>,
        /// The access decision's reason for it.
        reason: String,
    },
    /// A holder's credentials could not be read, so whether the binding grants it is not
    /// known.
    #[error(
        "cannot recover {addr} for binding `{binding}`: the credentials of {holder}, which \
         holds its socket, cannot be read (/proc/{}/status: {source}), and portbinder recovers a \
         socket only when it knows who holds it",
        holder.pid
    )]
    Credentials {
        /// The binding.
        binding: String,
        /// The address.
        addr: ListenAddr,
        /// The holder.
        holder: Box<Holder>,
        /// The cause.
        source: io::Error,
    },
    /// The socket is exactly the binding's kind, but the record of the sockets portbinder
    /// bound does not name it for the binding (setup/record/).
    #[error("not recovering {addr} for binding `{binding}` from {holder}: {why}")]
    NotBound {
        /// The binding.
        binding: String,
        /// The address.
        addr: ListenAddr,
        /// The holder it was taken from.
        holder: Box<Holder>,
        /// Why, and the fix.
        why: Box<Unrecorded>,
    },
    /// A process not examined came to hold the socket while the holders were examined.
    #[error(
        "not recovering {addr} for binding `{binding}`: {holder} came to hold its socket while \
         its holders were examined (a holder forked, or passed it on), so it was never judged: \
         start the daemon again"
    )]
    Changed {
        /// The binding.
        binding: String,
        /// The address.
        addr: ListenAddr,
        /// The new holder.
        holder: Box<Holder>,
    },
    /// The descriptor cannot be taken here.
    #[error("cannot take the socket of {addr} (binding `{binding}`) from {holder}: {why}")]
    Impossible {
        /// The binding.
        binding: String,
        /// The address.
        addr: ListenAddr,
        /// The holder.
        holder: Box<Holder>,
        /// Why.
        why: Box<Impossible>,
    },
    /// The socket on the address is not the one portbinder would bind there.
    #[error(
        "not recovering {addr} for binding `{binding}` from {holder}: the socket there is \
         {found}, not what portbinder binds for this address: stop the programs holding it, or \
         change the binding"
    )]
    NotTheBindings {
        /// The binding.
        binding: String,
        /// The address.
        addr: ListenAddr,
        /// The holder it was taken from.
        holder: Box<Holder>,
        /// What it is instead.
        found: String,
    },
}

impl RecoverError {
    /// The address the error is about (`None` for what concerns every address).
    pub fn addr(&self) -> Option<&ListenAddr> {
        match self {
            RecoverError::ProcNamespace { .. } | RecoverError::Read { .. } => None,
            RecoverError::Several { addr, .. }
            | RecoverError::NoHolder { addr, .. }
            | RecoverError::Unreadable { addr, .. }
            | RecoverError::Refused { addr, .. }
            | RecoverError::Foreign { addr, .. }
            | RecoverError::Impossible { addr, .. }
            | RecoverError::NotTheBindings { addr, .. }
            | RecoverError::Credentials { addr, .. }
            | RecoverError::NotBound { addr, .. }
            | RecoverError::Changed { addr, .. } => Some(addr),
        }
    }
}

fn socket_list(inodes: &[u64]) -> String {
    let shown: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holders_name_is_shown_escaped() {
        let holder = Holder {
            pid: 7,
            uid: Some(Uid::from_raw(1)),
            comm: Some(b"evil\nname x".to_vec()),
        };
        assert_eq!(
            holder.to_string(),
            r#"pid 7 (uid 1, comm "evil\x0aname\x20x")"#
        );
        let bare = Holder {
            pid: 7,
            uid: None,
            comm: None,
        };
        assert_eq!(bare.to_string(), "pid 7");
    }

    #[test]
    fn several_sockets_are_listed_and_every_error_names_its_address() {
        let addr: ListenAddr = "tcp://127.0.0.1:8080".parse().unwrap();
        let several = RecoverError::Several {
            binding: "http".into(),
            addr,
            inodes: vec![11, 12],
        };
        let text = several.to_string();
        assert!(
            text.contains("2 sockets are bound to it (socket:[11], socket:[12])"),
            "{text}"
        );
        assert_eq!(several.addr(), Some(&addr));
        let global = RecoverError::ProcNamespace {
            proc_self: "4711".into(),
            pid: 1,
        };
        assert_eq!(global.addr(), None);
    }
}
