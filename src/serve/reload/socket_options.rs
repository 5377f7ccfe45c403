//! The options of a binding's bound sockets, as a reload changes them: read back before a
//! step (a [`Snapshot`] of each socket), set in two parts (those a snapshot puts back, and
//! those it cannot, set last), and put back.

use crate::config::Binding;
use crate::config::address::ListenAddr;
use crate::serve::grant::served::Served;
use crate::serve::options::{self, Made, OptionError, Snapshot};

/// The options of `to` that a snapshot puts back, on each socket of `served`, once every
/// socket has been found to take all of `to`'s options without a privilege or a change that
/// could not be put back (before any is changed).
pub fn reversible(to: &Binding, served: &Served) -> Result<(), String> {
    let sockets = served.sockets();
    for (fd, addr) in sockets.iter().zip(&to.listen) {
        options::reload_can_apply(fd, &to.options).map_err(|e| shown(addr, &e))?;
    }
    for (fd, addr) in sockets.iter().zip(&to.listen) {
        options::apply_reversible(fd, addr, &to.options, Made::Inherited)
            .map_err(|e| shown(addr, &e))?;
    }
    Ok(())
}

/// Each socket of `served`, a binding of `from`, as it is now.
pub fn snapshots(served: &Served, from: &Binding) -> Result<Vec<Snapshot>, String> {
    let sockets = served.sockets();
    sockets
        .iter()
        .zip(&from.listen)
        .map(|(fd, addr)| Snapshot::take(fd, addr).map_err(|e| shown(addr, &e)))
        .collect()
}

/// Puts each socket of `served` back as `snapshots` found it.
pub fn restore(served: &Served, from: &Binding, snapshots: &[Snapshot]) -> Result<(), String> {
    let sockets = served.sockets();
    for ((fd, addr), snapshot) in sockets.iter().zip(&from.listen).zip(snapshots) {
        snapshot.restore(fd, addr).map_err(|e| shown(addr, &e))?;
    }
    Ok(())
}

/// The options of `to` that cannot be put back, on each socket of `served`.
pub fn lasting(to: &Binding, served: &Served) -> Result<(), String> {
    let sockets = served.sockets();
    for (fd, addr) in sockets.iter().zip(&to.listen) {
        options::apply_lasting(fd, addr, &to.options, Made::Inherited)
            .map_err(|e| shown(addr, &e))?;
    }
    Ok(())
}

/// An option's error on the socket of `addr`, on one line.
fn shown(addr: &ListenAddr, error: &OptionError) -> String {
    format!("{addr}: {}", error.to_string().replace("\n  ", "; "))
}
