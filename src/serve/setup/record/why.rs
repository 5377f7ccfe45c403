//! Why the record of the sockets bound does not let recovery take a socket: a record that
//! cannot be trusted ([`Untrusted`], treated as none), or one that does not name the socket
//! for the binding and address ([`Unrecorded`]). Each says what to do.

use std::path::PathBuf;

use nix::errno::Errno;

use crate::config::address::ListenAddr;

/// Why the record cannot be trusted: recovery then treats it as absent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    /// This daemon is not root: it cannot read root's record, and wrote none.
    #[error(
        "this daemon was not started as root: only a start as root records the sockets it \
         binds, and only root may trust the record"
    )]
    NotRoot,
    /// There is none.
    #[error(
        "there is no record of the sockets portbinder bound ({} does not exist: every start as \
         root writes it, so it was removed, or the sockets are older than it, from a start \
         without root or of a portbinder that kept no record)",
        path.display()
    )]
    Missing {
        /// Its path.
        path: PathBuf,
    },
    /// A symbolic link, a directory, a FIFO…
    #[error("the record {} is not a regular file", path.display())]
    NotRegular {
        /// Its path.
        path: PathBuf,
    },
    /// Linked elsewhere too.
    #[error(
        "the record {} has {links} links, so it may be an old record kept under another name",
        path.display()
    )]
    Links {
        /// Its path.
        path: PathBuf,
        /// st_nlink.
        links: libc::nlink_t,
    },
    /// Not root's.
    #[error(
        "the record {} is owned by uid {uid}, not root, so someone else may have written it",
        path.display()
    )]
    Owner {
        /// Its path.
        path: PathBuf,
        /// Its owner.
        uid: u32,
    },
    /// Group or other permission bits.
    #[error(
        "the record {} has mode {mode:04o}, not 0600 as portbinder writes it",
        path.display()
    )]
    Mode {
        /// Its path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Written during an earlier boot, whose cookies this boot gives out again.
    #[error(
        "the record {} was written before the last boot, and socket cookies start again at \
         each boot",
        path.display()
    )]
    OtherBoot {
        /// Its path.
        path: PathBuf,
    },
    /// open(2) or read(2) failed.
    #[error("the record {} cannot be read: {errno}", path.display())]
    Unreadable {
        /// Its path.
        path: PathBuf,
        /// The cause.
        errno: Errno,
    },
    /// Not in portbinder's format.
    #[error("the record {} is not one portbinder wrote: line {line} reads {text:?}", path.display())]
    Malformed {
        /// Its path.
        path: PathBuf,
        /// The line's number, from 1.
        line: usize,
        /// The line.
        text: String,
    },
}

/// Why a socket found on a configured address is not one the record lets recovery take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unrecorded {
    /// The record is trusted and does not name it.
    #[error(
        "the socket on {addr} was not bound by portbinder (no record of it in {}): another \
         server holds the address; stop it, or give the binding another address",
        path.display()
    )]
    NotInRecord {
        /// The address.
        addr: ListenAddr,
        /// The record.
        path: PathBuf,
    },
    /// The record names it for another binding (renamed since) or address.
    #[error(
        "portbinder bound the socket on {addr} for binding `{binding}` on {recorded}, not for \
         this one (its record {}): a socket is recovered only for the binding and address it \
         was bound for; stop the programs holding it, or give the binding its old name",
        path.display()
    )]
    ForAnother {
        /// The address.
        addr: ListenAddr,
        /// The binding it was recorded for.
        binding: String,
        /// The address it was recorded for.
        recorded: String,
        /// The record.
        path: PathBuf,
    },
    /// There is no record to trust.
    #[error(
        "the socket on {addr} is not known to be one portbinder bound: {why}; stop the programs \
         holding the address (the next start records the sockets it binds), or give the \
         binding another address"
    )]
    Unknown {
        /// The address.
        addr: ListenAddr,
        /// Why.
        why: Untrusted,
    },
}
