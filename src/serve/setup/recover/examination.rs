//! The examination of one socket's holders: each pinned with a pidfd and read through the
//! pin (its descriptor, its credentials, its name), judged by the rules (rules.rs), and the
//! socket taken from one of them with pidfd_getfd, checked to be the one looked for and one
//! that portbinder bound (setup/record/).

use std::os::fd::{AsFd, OwnedFd};

use crate::config::Binding;
use crate::config::address::ListenAddr;
use crate::serve::audit::Line;
use crate::serve::setup::holders::{self, Holding};
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

/// A holder, pinned, with what was read through the pin.
struct Examined {
    pinned: Pinned,
    fd: i32,
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
) -> Result<Option<(OwnedFd, Audited)>, RecoverError> {
    let impossible = |holder: Holder, why| RecoverError::Impossible {
        binding: f.binding.name.clone(),
        addr: *f.want,
        holder: Box::new(holder),
        why: Box::new(why),
    };
    let mut examined = Vec::new();
    for holding in holdings {
        let unread = Holder {
            pid: holding.pid,
            uid: None,
            comm: None,
        };
        let pinned = match Pinned::open(holding.pid) {
            Ok(pinned) => pinned,
            Err(PinError::Gone(_)) => continue,
            Err(PinError::Open { source, .. }) => {
                return Err(impossible(
                    unread,
                    Impossible::diagnose("pidfd_open", source),
                ));
            }
            Err(e @ PinError::Elsewhere { .. }) => {
                return Err(impossible(unread, Impossible::Namespace(e)));
            }
        };
        // Read again through the pin: the descriptor, then who the process is.
        let link = pinned.fd_target(holding.fd);
        if !link.is_ok_and(|l| l.as_os_str() == holders::socket_link(f.inode).as_str()) {
            continue;
        }
        let Ok(creds) = pinned.credentials() else {
            continue;
        };
        let comm = pinned.comm();
        if !pinned.still_running() {
            continue;
        }
        let granted = rules::grants(f.binding, holding.pid, &creds);
        examined.push(Examined {
            pinned,
            fd: holding.fd,
            creds,
            comm,
            granted,
        });
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
        let fd = match e.pinned.take(e.fd) {
            Ok(fd) => fd,
            // Exited, or closed the descriptor, since it was examined.
            Err(err) if matches!(err.raw_os_error(), Some(libc::ESRCH | libc::EBADF)) => continue,
            Err(err) => {
                return Err(impossible(
                    e.holder(),
                    Impossible::diagnose("pidfd_getfd", err),
                ));
            }
        };
        match rules::exact(&fd, f.want, f.inode, rules::ipv6_only(f.binding, f.want)) {
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
            .map_err(|err| impossible(e.holder(), Impossible::diagnose("getsockopt", err)))?;
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
        return Ok(Some((fd, (level, line))));
    }
    Ok(None)
}
