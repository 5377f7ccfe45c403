//! A reload's changes applied, all or none. The steps that can fail come first, in the plan's
//! order: a socket file's mode, a backlog, the options of bound sockets. When one fails, the
//! ones before it (and the failed one, which may have changed some sockets of its binding) are
//! put back, newest first, and the reload is refused with the error. Then the steps that
//! cannot fail: removed bindings (file removed, Unix socket and sockets closed, fd-store entry
//! dropped), and every kept binding's new table swapped in, which is where new rules take
//! effect, for the next connection.

use std::collections::HashMap;

use nix::unistd::Uid;

use crate::config::{Binding, Config};
use crate::serve::audit::Line;
use crate::serve::fdstore;
use crate::serve::grant::served::Served;
use crate::serve::notify::Notifier;
use crate::serve::options::{self, Made};
use crate::serve::reload::files;
use crate::serve::reload::plan::{Action, Change, Step};
use crate::serve::setup::endpoint::Endpoints;

/// A change that could not be applied, and what putting the others back left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// The change, as the plan names it.
    pub what: String,
    /// Why it failed.
    pub error: String,
    /// How many changes had been applied before it, and were put back.
    pub undone: usize,
    /// What could not be put back (empty: nothing changed).
    pub undo_errors: Vec<String>,
}

impl Failed {
    /// The reason of the reload's outcome line.
    pub fn summary(&self) -> String {
        let what = &self.what;
        if !self.undo_errors.is_empty() {
            return format!(
                "{what} could not be applied, and putting back what was applied before it \
                 failed too, so that part may be applied: restart to apply the file as it is"
            );
        }
        match self.undone {
            0 => format!("{what} could not be applied: nothing was changed"),
            1 => format!(
                "{what} could not be applied, and the 1 change applied before it was put back: \
                 nothing was changed"
            ),
            n => format!(
                "{what} could not be applied, and the {n} changes applied before it were put \
                 back: nothing was changed"
            ),
        }
    }
}

/// A step that can fail, on the binding served under a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fallible {
    Mode,
    Backlog,
    Options,
}

/// What the steps act on: the served bindings and their endpoints, owned by `owner`.
pub struct Target<'t, 'd> {
    /// The bindings served, by slot.
    pub served: &'t mut [Served],
    /// Their endpoints, by slot.
    pub endpoints: &'t mut Endpoints<'d>,
    /// The daemon's user, which owns the socket files.
    pub owner: Uid,
}

/// Applies `changes` (a plan with nothing refused) that turn `old`, the configuration in
/// force, into `new`, on `target`; removed bindings leave the fd store through `notifier`.
pub fn apply(
    changes: &[Change],
    old: &Config,
    new: &Config,
    mut target: Target<'_, '_>,
    notifier: &Notifier,
) -> Result<(), Failed> {
    let slots = slots(old, target.served, target.endpoints).ok_or_else(|| Failed {
        what: "the bindings served".to_owned(),
        error: "they do not match the configuration in force".to_owned(),
        undone: 0,
        undo_errors: Vec::new(),
    })?;
    let by_name: HashMap<&str, &Binding> =
        new.bindings.iter().map(|b| (b.name.as_str(), b)).collect();
    let mut applied: Vec<(Fallible, usize)> = Vec::new();
    for change in changes {
        let Some((kind, index)) = fallible(&change.action) else {
            continue;
        };
        let (from, slot) = (&old.bindings[index], slots[index]);
        // The plan has steps of this kind only for the bindings the file keeps.
        let Some(&to) = by_name.get(from.name.as_str()) else {
            continue;
        };
        if let Err(error) = set(kind, to, slot, &target) {
            // Newest first: the failed step itself, which may have changed some sockets of
            // its binding before one refused, then the ones applied before it.
            let partial = (kind != Fallible::Mode).then_some((kind, index));
            let undo_errors = partial
                .into_iter()
                .chain(applied.iter().rev().copied())
                .filter_map(|(kind, index)| {
                    let from = &old.bindings[index];
                    set(kind, from, slots[index], &target)
                        .err()
                        .map(|e| format!("binding `{}`: {e}", from.name))
                })
                .collect();
            return Err(Failed {
                what: change.what.clone(),
                error,
                undone: applied.len(),
                undo_errors,
            });
        }
        applied.push((kind, index));
    }
    // Nothing below can fail.
    let mut removed = Vec::new();
    for change in changes {
        if let Action::Apply(Step::Remove(index)) = change.action {
            remove(&old.bindings[index], slots[index], &mut target);
            removed.push(old.bindings[index].name.as_str());
        }
    }
    fdstore::remove(notifier, &removed);
    for (index, from) in old.bindings.iter().enumerate() {
        if let Some(to) = by_name.get(from.name.as_str()) {
            target.served[slots[index]].binding = (*to).clone();
        }
    }
    Ok(())
}

/// The slot of each binding of `old`, the configuration in force: the served bindings that
/// still have an endpoint, in order, which must carry its names.
fn slots(old: &Config, served: &[Served], endpoints: &Endpoints<'_>) -> Option<Vec<usize>> {
    let slots: Vec<usize> = (0..served.len())
        .filter(|&slot| endpoints.get(slot).is_some())
        .collect();
    let matches = slots.len() == old.bindings.len()
        && slots
            .iter()
            .zip(&old.bindings)
            .all(|(&slot, b)| served[slot].binding.name == b.name);
    matches.then_some(slots)
}

/// The step of `action` that can fail, and its binding's index in the configuration in force.
fn fallible(action: &Action) -> Option<(Fallible, usize)> {
    match action {
        Action::Apply(Step::Mode(i)) => Some((Fallible::Mode, *i)),
        Action::Apply(Step::Backlog(i)) => Some((Fallible::Backlog, *i)),
        Action::Apply(Step::Options(i)) => Some((Fallible::Options, *i)),
        _ => None,
    }
}

/// Brings the binding served under `slot` to what `to` says for `kind`.
fn set(kind: Fallible, to: &Binding, slot: usize, target: &Target<'_, '_>) -> Result<(), String> {
    let sockets = target.served[slot].sockets();
    match kind {
        Fallible::Mode => {
            let endpoint = target
                .endpoints
                .get(slot)
                .ok_or("its socket file is gone")?;
            let dir = target.endpoints.dir();
            files::chmod_socket_file(dir, endpoint.file(), target.owner, to.mode).map_err(|e| {
                format!(
                    "cannot change the mode of {} to {:04o}: {e}; it is not the daemon's socket \
                     file any more (restart to make it again)",
                    endpoint.path.display(),
                    to.mode
                )
            })
        }
        Fallible::Backlog => files::relisten(sockets, &to.listen, to.backlog)
            .map_err(|e| format!("cannot listen again with backlog {}: {e}", to.backlog)),
        Fallible::Options => {
            for (fd, addr) in sockets.iter().zip(&to.listen) {
                options::apply(fd, addr, &to.options, Made::Inherited).map_err(|e| {
                    let text = e.to_string().replace("\n  ", "; ");
                    format!("{addr}: {text}")
                })?;
            }
            Ok(())
        }
    }
}

/// Removes binding `from`, served under `slot`: its socket file, then its Unix socket (which
/// leaves the serve loop's epoll set as it closes), then its sockets (the programs holding
/// them keep them). A file that cannot be removed is logged: the socket behind it is closed
/// either way, so a client finds nothing there.
fn remove(from: &Binding, slot: usize, target: &mut Target<'_, '_>) {
    let path = target.endpoints.get(slot).map(|e| e.path.clone());
    if let Err(errno) = target.endpoints.remove(slot) {
        log::warn!(
            "{}",
            Line::new("error")
                .field("binding", &from.name)
                .field("op", "unlink")
                .field(
                    "socket",
                    path.as_deref()
                        .unwrap_or(std::path::Path::new("-"))
                        .display()
                )
                .field("error", errno.desc())
                .field(
                    "action",
                    "the binding is removed; its socket file stays, and refuses connections"
                )
        );
    }
    target.served[slot].close();
}
