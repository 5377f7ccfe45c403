//! The examination of one socket's holders: each pinned with a pidfd and read through the
//! pin (its descriptor, its credentials, its name), judged by the rules (rules.rs), and the
//! socket taken from one of them with pidfd_getfd, checked to be the one looked for and one
//! that portbinder bound (setup/record/). The pins are kept, so that once every socket is
//! taken the holders can be scanned again ([`unchanged`]): a process that came to hold one
//! meanwhile (a fork, a descriptor passed on) was never examined.

use std::collections::BTreeSet;
use std::os::fd::{AsFd, OwnedFd, RawFd};

use crate::config::Binding;
use crate::config::address::ListenAddr;
use crate::serve::audit::Line;
use crate::serve::setup::holders::{self, Holding, Scan};
use crate::serve::setup::pinned::{Credentials, PinError, Pinned};
use crate::serve::setup::record::Record;
use crate::serve::sys;

use super::error::{Holder, RecoverError};
use super::impossible::Impossible;
use super::rules;

/// An audit line and its severity.
pub type Audited = (log::Level, Line);

/// A socket found on a configured address.
pub(super) struct Found<'a> {
    pub(super) slot: usize,
    pub(super) binding: &'a Binding,
    pub(super) want: &'a ListenAddr,
    pub(super) inode: u64,
}

impl Found<'_> {
    fn impossible(&self, holder: Holder, why: Impossible) -> RecoverError {
        RecoverError::Impossible {
            binding: self.binding.name.clone(),
            addr: *self.want,
            holder: Box::new(holder),
            why: Box::new(why),
        }
    }
}

/// A socket taken from its holders, with their pins.
pub(super) struct Recovered {
    pub(super) fd: OwnedFd,
    pub(super) line: Audited,
    /// Every holder examined, still pinned.
    holders: Vec<Pinned>,
}

/// A holder, pinned, with what was read through the pin.
struct Examined {
    pinned: Pinned,
    /// Where it holds the socket in its own table (what pidfd_getfd takes from), if there.
    fd: Option<RawFd>,
    creds: Credentials,
    comm: Option<Vec<u8>>,
    granted: Result<(), String>,
}

impl Examined {
    fn holder(&self) -> Holder {
        Holder {
            pid: self.pinned.pid(),
            uid: Some(self.creds.uid),
            comm: self.comm.clone(),
        }
    }
}

/// Applies the rules to the holders of one socket and takes it from one of them, if
/// `record` says portbinder bound it. `None` when no holder is left to take it from (they
/// exited or closed it meanwhile).
pub(super) fn recover_one(
    f: &Found<'_>,
    holdings: &[Holding],
    port_start: u16,
    record: &Record,
) -> Result<Option<Recovered>, RecoverError> {
    let mut examined = Vec::new();
    for holding in holdings {
        examined.extend(examine(f, holding)?);
    }
    let privileged = rules::is_privileged(f.want.addr.port(), port_start);
    // Even on a privileged port, a socket none of whose holders the binding grants is not
    // the binding's (a root web server's own, say): it is never taken from them.
    if privileged && !examined.iter().any(|e| e.granted.is_ok()) {
        if let Some(e) = examined.first() {
            return Err(RecoverError::Foreign {
                binding: f.binding.name.clone(),
                addr: *f.want,
                holder: Box::new(e.holder()),
                reason: e.granted.clone().err().unwrap_or_default(),
            });
        }
    }
    if !privileged {
        let outsider = examined
            .iter()
            .find_map(|e| e.granted.as_ref().err().map(|reason| (e, reason)));
        if let Some((outsider, reason)) = outsider {
            return Err(RecoverError::Refused {
                binding: f.binding.name.clone(),
                addr: *f.want,
                holder: Box::new(outsider.holder()),
                reason: reason.clone(),
                port_start,
            });
        }
    }
    let ungranted = examined.iter().filter(|e| e.granted.is_err()).count();
    let (rule, level) = match ungranted {
        0 => ("granted", log::Level::Info),
        _ => ("privileged-port", log::Level::Warn),
    };
    // Taken from a holder the binding grants when there is one: the audit line names it.
    examined.sort_by_key(|e| e.granted.is_err());
    for e in &examined {
        // Held by threads with a table of their own only: pidfd_getfd cannot reach it.
        let Some(number) = e.fd else {
            continue;
        };
        let fd = match e.pinned.take(number) {
            Ok(fd) => fd,
            // Exited, or closed the descriptor, since it was examined.
            Err(err) if matches!(err.raw_os_error(), Some(libc::ESRCH | libc::EBADF)) => continue,
            Err(err) => {
                return Err(f.impossible(e.holder(), Impossible::diagnose("pidfd_getfd", err)));
            }
        };
        match rules::exact(
            &fd,
            f.want,
            f.inode,
            f.binding.options.ipv6_only_for(f.want),
        ) {
            Ok(()) => {}
            Err(rules::NotExact::OtherFile) => continue,
            Err(rules::NotExact::Socket(found)) => {
                return Err(RecoverError::NotTheBindings {
                    binding: f.binding.name.clone(),
                    addr: *f.want,
                    holder: Box::new(e.holder()),
                    found,
                });
            }
        }
        // Exactly the binding's kind of socket: but one that portbinder bound?
        let cookie = sys::socket_cookie(fd.as_fd())
            .map_err(|err| f.impossible(e.holder(), Impossible::diagnose("getsockopt", err)))?;
        if let Err(why) = record.admits(&f.binding.name, f.want, cookie) {
            return Err(RecoverError::NotBound {
                binding: f.binding.name.clone(),
                addr: *f.want,
                holder: Box::new(e.holder()),
                why: Box::new(why),
            });
        }
        let line = Line::new("recovered")
            .field("binding", &f.binding.name)
            .field("listen", f.want)
            .field("inode", f.inode)
            .field("rule", rule)
            .field("holders", examined.len())
            .field("ungranted", ungranted)
            .field("pid", e.pinned.pid())
            .field("uid", e.creds.uid)
            .field("gid", e.creds.gid)
            .bytes("comm", e.comm.as_deref().unwrap_or(b"-"));
        return Ok(Some(Recovered {
            fd,
            line: (level, line),
            holders: examined.into_iter().map(|e| e.pinned).collect(),
        }));
    }
    Ok(None)
}

/// Pins `holding` and reads it through the pin: `None` when it exited, or closed the socket,
/// since the scan. A holder that still runs but cannot be read is an error: who holds the
/// socket must be known.
fn examine(f: &Found<'_>, holding: &Holding) -> Result<Option<Examined>, RecoverError> {
    let unread = || Holder {
        pid: holding.pid,
        uid: None,
        comm: None,
    };
    let pinned = match Pinned::open(holding.pid) {
        Ok(pinned) => pinned,
        // Gone. Had it passed the socket on first (to a child, say), the scan after the take
        // finds the process that holds it now.
        Err(PinError::Gone(_)) => return Ok(None),
        Err(PinError::Open { source, .. }) => {
            return Err(f.impossible(unread(), Impossible::diagnose("pidfd_open", source)));
        }
        Err(e @ PinError::Elsewhere { .. }) => {
            return Err(f.impossible(unread(), Impossible::Namespace(e)));
        }
    };
    // Read again through the pin: the descriptor (or where it went: a dup to another
    // number, a thread's own table), then who the process is.
    let link = holders::socket_link(f.inode);
    let at_number = holding.fd.filter(|&fd| {
        pinned
            .fd_target(fd)
            .is_ok_and(|l| l.as_os_str() == link.as_str())
    });
    let fd = match at_number {
        Some(fd) => Some(fd),
        None => {
            let tables = pinned.tables(&BTreeSet::from([f.inode]));
            match tables.held.get(&f.inode) {
                Some(&fd) => fd,
                None if tables.denied && pinned.still_running() => {
                    let denied = std::io::Error::from_raw_os_error(libc::EACCES);
                    return Err(f.impossible(unread(), Impossible::diagnose("readlink", denied)));
                }
                // Closed it, or exited.
                None => return Ok(None),
            }
        }
    };
    let creds = match pinned.credentials() {
        Ok(creds) => creds,
        Err(_) if !pinned.still_running() => return Ok(None),
        Err(source) => {
            return Err(RecoverError::Credentials {
                binding: f.binding.name.clone(),
                addr: *f.want,
                holder: Box::new(unread()),
                source,
            });
        }
    };
    let comm = pinned.comm();
    if !pinned.still_running() {
        return Ok(None);
    }
    let granted = rules::grants(f.binding, &creds);
    Ok(Some(Examined {
        pinned,
        fd,
        creds,
        comm,
        granted,
    }))
}

/// Checks, once every socket is taken, that each is held only by processes examined before
/// its take, still running (a pid that exited and was reused is another process): `scan` is
/// /proc read again (setup/holders.rs), without this process.
pub(super) fn unchanged(
    recovered: &[(&Found<'_>, &Recovered)],
    scan: &Scan,
) -> Result<(), RecoverError> {
    for (f, taken) in recovered {
        let now = scan.holders.get(&f.inode).map_or(&[][..], Vec::as_slice);
        let examined = |h: &&Holding| {
            taken
                .holders
                .iter()
                .any(|p| p.pid() == h.pid && p.still_running())
        };
        if let Some(h) = now.iter().find(|h| !examined(h)) {
            return Err(RecoverError::Changed {
                binding: f.binding.name.clone(),
                addr: *f.want,
                holder: Box::new(Holder {
                    pid: h.pid,
                    uid: None,
                    comm: None,
                }),
            });
        }
    }
    Ok(())
}
