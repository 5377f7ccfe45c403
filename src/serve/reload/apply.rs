//! A reload's changes applied, all or none. The steps that can fail come first, in the plan's
//! order: a socket file's mode, a backlog, the options of bound sockets that can be put back
//! exactly. When one fails, the ones before it (and the failed one, which may have changed
//! some sockets of its binding) are put back, newest first, and the reload is refused with the
//! error: a mode or a backlog as the configuration in force says (the daemon set both; a
//! holder may listen(2) again with a backlog of its own, which no call reads back, so that one
//! is not restored), options as a snapshot read from each socket before the step found them.
//! Then the options that cannot be put back, the keepalive timings and the buffers (whose
//! defaults follow sysctls, which a set value stops following) and the status flags, which the
//! plan and the options step have checked will be granted (a buffer within what the kernel
//! grants without CAP_NET_ADMIN, or already as configured). Last,
//! the steps that cannot fail: removed bindings (file removed, Unix socket and sockets closed,
//! fd-store entry dropped), and every kept binding's new table swapped in, which is where new
//! rules take effect, for the next connection.

use std::collections::HashMap;

use nix::unistd::Uid;

use crate::config::{Binding, Config};
use crate::serve::audit::Line;
use crate::serve::fdstore;
use crate::serve::grant::served::Served;
use crate::serve::notify::Notifier;
use crate::serve::options::Snapshot;
use crate::serve::reload::files;
use crate::serve::reload::plan::{Action, Change, Step};
use crate::serve::reload::socket_options::{self, lasting, restore, snapshots};
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
    let mut applied: Vec<Applied> = Vec::new();
    for change in changes {
        let Some((kind, index)) = fallible(&change.action) else {
            continue;
        };
        let (from, slot) = (&old.bindings[index], slots[index]);
        // The plan has steps of this kind only for the bindings the file keeps.
        let Some(&to) = by_name.get(from.name.as_str()) else {
            continue;
        };
        let before = applied.len();
        let snapshots = match kind {
            Fallible::Options => snapshots(&target.served[slot], from)
                .map_err(|error| failure(change, error, &applied, before, old, &slots, &target))?,
            _ => Vec::new(),
        };
        applied.push(Applied {
            change,
            kind,
            index,
            snapshots,
        });
        if let Err(error) = set(kind, to, slot, &target) {
            // The failed step is put back too, unless it is a mode: an options or backlog
            // step may have changed some sockets of its binding before one refused.
            let put_back = match kind {
                Fallible::Mode => &applied[..before],
                _ => &applied[..],
            };
            return Err(failure(
                change, error, put_back, before, old, &slots, &target,
            ));
        }
    }
    for step in applied.iter().filter(|s| s.kind == Fallible::Options) {
        let from = &old.bindings[step.index];
        let to = by_name[from.name.as_str()];
        if let Err(error) = lasting(to, &target.served[slots[step.index]]) {
            let all = applied.len();
            let mut failed = failure(step.change, error, &applied, all, old, &slots, &target);
            failed.undo_errors.push(format!(
                "binding `{}` and those before it: the keepalive timings, buffers and \
                 nonblocking set on their sockets cannot be put back",
                from.name
            ));
            return Err(failed);
        }
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

/// A step that was applied, with what it needs to be put back.
struct Applied<'c> {
    change: &'c Change,
    kind: Fallible,
    index: usize,
    /// An options step's snapshot of each socket of its binding, taken before it.
    snapshots: Vec<Snapshot>,
}

/// The reload refused by `change`'s `error`, once `put_back` is: `applied` changes had been
/// applied before it (`put_back` may also hold the failed one, which may have half-applied).
fn failure(
    change: &Change,
    error: String,
    put_back: &[Applied<'_>],
    applied: usize,
    old: &Config,
    slots: &[usize],
    target: &Target<'_, '_>,
) -> Failed {
    Failed {
        what: change.what.clone(),
        error,
        undone: applied,
        undo_errors: undo(put_back, old, slots, target),
    }
}

/// Puts `steps` back, newest first; returns what could not be.
fn undo(
    steps: &[Applied<'_>],
    old: &Config,
    slots: &[usize],
    target: &Target<'_, '_>,
) -> Vec<String> {
    steps
        .iter()
        .rev()
        .filter_map(|step| {
            let (from, slot) = (&old.bindings[step.index], slots[step.index]);
            let result = match step.kind {
                Fallible::Options => restore(&target.served[slot], from, &step.snapshots),
                kind => set(kind, from, slot, target),
            };
            result
                .err()
                .map(|e| format!("binding `{}`: {e}", from.name))
        })
        .collect()
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
        Fallible::Options => socket_options::reversible(to, &target.served[slot]),
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
