//! Grants whose answer has not been read yet. The sockets of such a grant are in flight, and
//! the kernel charges every socket in flight to the daemon's user, up to its RLIMIT_NOFILE,
//! whichever binding it belongs to (beyond it, sendmsg fails with ETOOMANYREFS). So the
//! daemon keeps its end of every granted connection until the answer has been read or the
//! peer has closed, counts what each binding and each uid holds unread, and denies beyond
//! their caps: every binding gets an equal share of the budget, and one uid at most a
//! quarter of a binding's share.
//!
//! Cheap on the common path, where a client reads at once and closes: a granted connection
//! is kept *fresh* and checked later, in batches, with one poll(2) for the batch (a closed
//! peer shows as POLLHUP) and SIOCOUTQ only for a peer still open (0 bytes: read). Only a
//! connection still unread at its check is registered with epoll, which reports when it is
//! read or closed. A fresh connection is checked once the loop has waited since it was sent,
//! when more than [`FRESH_MAX`] are fresh, or when a cap is reached.

use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::serve::grant::events::Events;
use crate::serve::sys;

/// Descriptors kept free of the budget for the loop itself (connections being answered,
/// /proc and /etc reads, pidfds, a syslog reconnect).
pub const RESERVE: u64 = 128;
/// Fresh connections beyond this are checked at once, the oldest first.
const FRESH_MAX: usize = 32;
/// The newest fresh connections left for later when checking because of [`FRESH_MAX`]:
/// their clients are most likely still reading.
const FRESH_KEEP: usize = 4;

/// One granted connection, kept until its answer has been read.
#[derive(Debug)]
struct Held {
    conn: OwnedFd,
    binding: usize,
    uid: u32,
    /// The loop iteration that sent it.
    sent_in: u64,
}

/// The unread grants, their counts and their caps.
#[derive(Debug)]
pub struct Unread {
    fresh: VecDeque<Held>,
    /// Connections found unread, registered with epoll under their slot.
    waiting: Vec<Option<Held>>,
    free_slots: Vec<usize>,
    per_binding: Vec<u32>,
    per_uid: HashMap<(usize, u32), u32>,
    binding_cap: Vec<u32>,
    uid_cap: Vec<u32>,
    iteration: u64,
}

/// The caps for bindings granting `fds[b]` sockets each, with a descriptor limit of
/// `fd_limit` of which `fds_open` are in use: per binding, an equal share of what is left
/// after [`RESERVE`], in grants; per uid, a quarter of that. At least 1 each.
pub fn caps(fds: &[usize], fd_limit: u64, fds_open: u64) -> (Vec<u32>, Vec<u32>) {
    let budget = fd_limit.saturating_sub(fds_open + RESERVE);
    let share = budget / fds.len().max(1) as u64;
    let binding: Vec<u32> = fds
        .iter()
        .map(|&n| (share / n.max(1) as u64).clamp(1, u64::from(u32::MAX)) as u32)
        .collect();
    let uid = binding.iter().map(|&cap| (cap / 4).max(1)).collect();
    (binding, uid)
}

impl Unread {
    /// Accounting for bindings granting `fds[b]` sockets each (see [`caps`]).
    pub fn new(fds: &[usize], fd_limit: u64, fds_open: u64) -> Unread {
        let (binding_cap, uid_cap) = caps(fds, fd_limit, fds_open);
        Unread {
            fresh: VecDeque::new(),
            waiting: Vec::new(),
            free_slots: Vec::new(),
            per_binding: vec![0; fds.len()],
            per_uid: HashMap::new(),
            binding_cap,
            uid_cap,
            iteration: 0,
        }
    }

    /// Whether `uid` may be sent one more grant of binding `binding` (named `name`). At a
    /// cap, the fresh connections are checked first; `Err` is the reason for the denial.
    pub fn admit(
        &mut self,
        binding: usize,
        uid: u32,
        name: &str,
        events: &Events,
    ) -> Result<(), String> {
        if self.over_cap(binding, uid) {
            let all = self.fresh.len();
            self.check_fresh(all, events);
        }
        let held = self.per_uid.get(&(binding, uid)).copied().unwrap_or(0);
        if held >= self.uid_cap[binding] {
            return Err(format!(
                "uid {uid} holds {held} unread grants of binding `{name}`, the most one uid may: \
                 read or close them, then retry"
            ));
        }
        let held = self.per_binding[binding];
        if held >= self.binding_cap[binding] {
            return Err(format!(
                "binding `{name}` has {held} unread grants, its share of the sockets the daemon \
                 may have in flight: retry once their clients have read or closed them"
            ));
        }
        Ok(())
    }

    fn over_cap(&self, binding: usize, uid: u32) -> bool {
        self.per_binding[binding] >= self.binding_cap[binding]
            || self
                .per_uid
                .get(&(binding, uid))
                .is_some_and(|&n| n >= self.uid_cap[binding])
    }

    /// Keeps `conn`, just granted binding `binding` to `uid`, until its answer is read.
    pub fn hold(&mut self, conn: OwnedFd, binding: usize, uid: u32, events: &Events) {
        self.per_binding[binding] += 1;
        *self.per_uid.entry((binding, uid)).or_insert(0) += 1;
        self.fresh.push_back(Held {
            conn,
            binding,
            uid,
            sent_in: self.iteration,
        });
        if self.fresh.len() > FRESH_MAX {
            self.check_fresh(self.fresh.len() - FRESH_KEEP, events);
        }
    }

    /// Whether some connection waits for its first check (the loop then waits briefly).
    pub fn has_fresh(&self) -> bool {
        !self.fresh.is_empty()
    }

    /// At the end of a loop iteration: checks the connections sent before the loop last
    /// waited, and starts the next iteration.
    pub fn end_iteration(&mut self, events: &Events) {
        let old = self
            .fresh
            .iter()
            .take_while(|h| h.sent_in < self.iteration)
            .count();
        self.check_fresh(old, events);
        self.iteration += 1;
    }

    /// Checks the `count` oldest fresh connections: released when the peer has closed or
    /// read, else watched through epoll.
    fn check_fresh(&mut self, count: usize, events: &Events) {
        if count == 0 {
            return;
        }
        let batch: Vec<Held> = self.fresh.drain(..count).collect();
        // Requesting no event still reports POLLHUP and POLLERR: the peer has closed.
        let mut fds: Vec<PollFd<'_>> = batch
            .iter()
            .map(|h| PollFd::new(h.conn.as_fd(), PollFlags::empty()))
            .collect();
        let polled = poll(&mut fds, PollTimeout::ZERO).is_ok();
        let closed: Vec<bool> = fds
            .iter()
            .map(|f| polled && f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        for (held, closed) in batch.into_iter().zip(closed) {
            if closed || is_read(&held) {
                self.release(held);
            } else {
                self.watch(held, events);
            }
        }
    }

    fn watch(&mut self, held: Held, events: &Events) {
        let slot = self.free_slots.pop().unwrap_or(self.waiting.len());
        if events.watch_held(held.conn.as_fd(), slot).is_err() {
            // Cannot be watched (out of memory): forget it rather than count it forever.
            return self.release(held);
        }
        if slot == self.waiting.len() {
            self.waiting.push(Some(held));
        } else {
            self.waiting[slot] = Some(held);
        }
    }

    /// A watched connection's epoll event: released once its answer is read or its peer gone.
    pub fn on_event(&mut self, slot: usize) {
        let read = self
            .waiting
            .get(slot)
            .and_then(Option::as_ref)
            .is_some_and(is_read);
        if read {
            let held = self.waiting[slot].take().expect("checked");
            self.free_slots.push(slot);
            self.release(held);
        }
    }

    /// Closes the daemon's end and uncounts it.
    fn release(&mut self, held: Held) {
        self.per_binding[held.binding] -= 1;
        let key = (held.binding, held.uid);
        if let Some(n) = self.per_uid.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.per_uid.remove(&key);
            }
        }
        drop(held.conn);
    }
}

/// Whether nothing the daemon sent on `held` is left in its peer's queue (SIOCOUTQ). An
/// error counts as read: such a connection cannot be tracked, and is closed.
fn is_read(held: &Held) -> bool {
    !matches!(sys::unread_bytes(held.conn.as_fd()), Ok(bytes) if bytes > 0)
}

#[cfg(test)]
mod tests;
