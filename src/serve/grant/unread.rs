//! Grants whose answer has not been read yet. The sockets of such a grant are in flight, and
//! the kernel charges every socket in flight to the daemon's user, up to its RLIMIT_NOFILE,
//! whichever binding it belongs to (beyond it, sendmsg fails with ETOOMANYREFS). So the
//! daemon keeps its end of every granted connection until the answer has been read or the
//! peer has closed, counts what each binding and each uid holds unread, and denies beyond
//! their caps: every binding gets an equal share of the budget, and one uid at most a
//! quarter of a binding's share (but always [`UID_FLOOR`], or the whole share if smaller).
//!
//! Cheap on the common path, where a client reads at once and closes: a granted connection
//! is kept *fresh* and checked later, in batches, with SIOCOUTQ (0 bytes left in the peer's
//! queue: read, or closed and purged; a hang-up alone proves nothing, since a peer may shut
//! its end down and never read). Only a connection still unread at its check is registered
//! with epoll, which reports when it is read or closed. A fresh connection is checked [`FRESH_CHECK`] after it was sent, when more
//! than [`FRESH_MAX`] are fresh, or when a cap is reached; at a cap, the epoll events of the
//! registered connections are taken first, so a client that reads is never denied for
//! grants it has read.

use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::serve::grant::events::Events;
use crate::serve::sys;

/// Descriptors kept free of the budget for the loop itself (connections being answered,
/// /proc and /etc reads, pidfds, a syslog reconnect).
pub const RESERVE: u64 = 128;
/// One uid may always hold this many unread grants of a binding (or the binding's whole
/// share, if smaller), so that a busy client with several workers is never denied because
/// a few of its grants are in transit.
pub const UID_FLOOR: u32 = 64;
/// How long after it was sent a grant is checked, at the latest (in a batch with the others
/// due): a client that reads on until the end of the stream sees it about then. Longer than
/// a scheduler tick (4 ms at HZ=250) on purpose: a shorter timeout is the CPU's earliest
/// timer on every sleep of the loop, reprogrammed twice per grant, which cost a quarter of
/// the one-client grant rate in a VM (bench/README.md, "Profiling notes").
pub const FRESH_CHECK: Duration = Duration::from_millis(10);
/// Fresh connections beyond this are checked at once, the oldest first.
const FRESH_MAX: usize = 32;
/// The newest fresh connections left for later when checking because of [`FRESH_MAX`]:
/// their clients are most likely still reading.
const FRESH_KEEP: usize = 4;
/// Released connections closed per loop iteration, besides one after each grant: closing
/// the last end of a connection frees both ends, and a whole batch at once would keep the
/// next client waiting.
const CLOSE_PER_WAKE: usize = 8;

/// One granted connection, kept until its answer has been read.
#[derive(Debug)]
struct Held {
    conn: OwnedFd,
    binding: usize,
    uid: u32,
    /// When it was sent.
    sent: Instant,
}

/// The unread grants, their counts and their caps.
#[derive(Debug)]
pub struct Unread {
    fresh: VecDeque<Held>,
    /// Connections found read (and uncounted), to close a few at a time.
    closing: Vec<OwnedFd>,
    /// Connections found unread, registered with epoll under their slot.
    waiting: Vec<Option<Held>>,
    free_slots: Vec<usize>,
    per_binding: Vec<u32>,
    per_uid: HashMap<(usize, u32), u32>,
    binding_cap: Vec<u32>,
    uid_cap: Vec<u32>,
}

/// The caps for bindings granting `fds[b]` sockets each, with a descriptor limit of
/// `fd_limit` of which `fds_open` are in use: per binding, an equal share of what is left
/// after [`RESERVE`], in grants (at least 1); per uid, a quarter of that, but at least
/// [`UID_FLOOR`] or the binding's cap if smaller.
pub fn caps(fds: &[usize], fd_limit: u64, fds_open: u64) -> (Vec<u32>, Vec<u32>) {
    let budget = fd_limit.saturating_sub(fds_open + RESERVE);
    let share = budget / fds.len().max(1) as u64;
    let binding: Vec<u32> = fds
        .iter()
        .map(|&n| (share / n.max(1) as u64).clamp(1, u64::from(u32::MAX)) as u32)
        .collect();
    let uid = binding
        .iter()
        .map(|&cap| (cap / 4).max(cap.min(UID_FLOOR)))
        .collect();
    (binding, uid)
}

impl Unread {
    /// Accounting for bindings granting `fds[b]` sockets each (see [`caps`]).
    pub fn new(fds: &[usize], fd_limit: u64, fds_open: u64) -> Unread {
        let (binding_cap, uid_cap) = caps(fds, fd_limit, fds_open);
        Unread {
            fresh: VecDeque::new(),
            closing: Vec::new(),
            waiting: Vec::new(),
            free_slots: Vec::new(),
            per_binding: vec![0; fds.len()],
            per_uid: HashMap::new(),
            binding_cap,
            uid_cap,
        }
    }

    /// Whether `uid` may be sent one more grant of binding `binding` (named `name`). At a
    /// cap, what has been read since is found first (the pending epoll events of watched
    /// connections, then every fresh one); `Err` is the reason for the denial.
    pub fn admit(
        &mut self,
        binding: usize,
        uid: u32,
        name: &str,
        events: &mut Events,
    ) -> Result<(), String> {
        if self.over_cap(binding, uid) {
            for slot in events.held_ready_now() {
                self.on_event(slot);
            }
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

    /// Keeps `conn`, granted binding `binding` to `uid` at `now`, until its answer is read.
    pub fn hold(&mut self, conn: OwnedFd, binding: usize, uid: u32, now: Instant, events: &Events) {
        self.per_binding[binding] += 1;
        *self.per_uid.entry((binding, uid)).or_insert(0) += 1;
        self.fresh.push_back(Held {
            conn,
            binding,
            uid,
            sent: now,
        });
        if self.fresh.len() > FRESH_MAX {
            self.check_fresh(self.fresh.len() - FRESH_KEEP, events);
        }
        self.closing.pop();
    }

    /// When the loop should wake for the next check, or to close what is left to close.
    pub fn deadline(&self, now: Instant) -> Option<Instant> {
        let closing = (!self.closing.is_empty()).then_some(now + FRESH_CHECK);
        let fresh = self.fresh.front().map(|h| h.sent + FRESH_CHECK);
        closing.into_iter().chain(fresh).min()
    }

    /// Closes up to [`CLOSE_PER_WAKE`] released connections, or all of them when the loop is
    /// `idle` (no client waits for it); the loop does this once per wake-up.
    pub fn close_some(&mut self, idle: bool) {
        let keep = if idle {
            0
        } else {
            self.closing.len().saturating_sub(CLOSE_PER_WAKE)
        };
        self.closing.truncate(keep);
    }

    /// Once the oldest fresh connection is due at `now`, checks every fresh one but the
    /// [`FRESH_KEEP`] newest (unless they are due too), so that a steady stream of grants
    /// is checked in batches, not one by one as each comes due.
    pub fn check_due(&mut self, now: Instant, events: &Events) {
        if self
            .fresh
            .front()
            .is_none_or(|h| h.sent + FRESH_CHECK > now)
        {
            return;
        }
        let due = self
            .fresh
            .iter()
            .take_while(|h| h.sent + FRESH_CHECK <= now)
            .count();
        let count = due.max(self.fresh.len().saturating_sub(FRESH_KEEP));
        self.check_fresh(count, events);
    }

    /// Checks the `count` oldest fresh connections: released when the answer is no longer in
    /// the peer's queue (read, or the peer closed and its queue was purged), else watched
    /// through epoll. A hang-up is no sign of that: the daemon has shut its own end down,
    /// so a peer that shuts down its end for writing, and reads nothing, hangs up too.
    fn check_fresh(&mut self, count: usize, events: &Events) {
        for _ in 0..count {
            let Some(held) = self.fresh.pop_front() else {
                break;
            };
            if is_read(&held) {
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

    /// Uncounts `held`, and queues the daemon's end to be closed.
    fn release(&mut self, held: Held) {
        self.per_binding[held.binding] -= 1;
        let key = (held.binding, held.uid);
        if let Some(n) = self.per_uid.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.per_uid.remove(&key);
            }
        }
        self.closing.push(held.conn);
    }
}

/// Whether nothing the daemon sent on `held` is left in its peer's queue (SIOCOUTQ). An
/// error counts as read: such a connection cannot be tracked, and is closed.
fn is_read(held: &Held) -> bool {
    !matches!(sys::unread_bytes(held.conn.as_fd()), Ok(bytes) if bytes > 0)
}

#[cfg(test)]
mod tests;
