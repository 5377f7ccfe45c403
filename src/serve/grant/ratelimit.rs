//! Collapses floods of audit events so that the log stays readable and bounded whatever the
//! number of uids. Two limits apply to every event, each over windows of [`Limits::window`]:
//!
//! * per key (event kind, binding, uid): at most [`Limits::per_uid`] lines; the rest of that
//!   uid's events are counted and reported in one `event=suppressed … uid=U count=N` line
//!   when its window ends;
//! * per (kind, binding), for all uids together: at most [`Limits::per_binding`] lines; the
//!   events beyond it are folded into one `event=suppressed … count=N uids=K first_uid=A
//!   last_uid=B` line per window, which keeps the binding and says how many distinct uids
//!   were folded.
//!
//! So in one window a (kind, binding) writes at most `per_binding` event lines,
//! `per_binding / per_uid` per-uid lines and one folded line, for any number of uids. The
//! key table is bounded: when it is full, keys with nothing suppressed are forgotten, and an
//! event that still finds no room is folded. The limiter only decides whether to *log*; the
//! grant or denial itself always happens at once.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::serve::grant::suppressed::{Key, Kind, Report};

/// The limits: the window, the lines per key and per (kind, binding), and the sizes of the
/// tables.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The length of every window.
    pub window: Duration,
    /// Lines per key (kind, binding, uid) per window.
    pub per_uid: u32,
    /// Lines per (kind, binding) per window, all uids together.
    pub per_binding: u32,
    /// Keys tracked at once.
    pub max_keys: usize,
    /// Distinct folded uids tracked at once, over all bindings.
    pub max_folded_uids: usize,
}

/// The daemon's limits (README, "Audit log").
pub const LIMITS: Limits = Limits {
    window: Duration::from_secs(10),
    per_uid: 20,
    per_binding: 100,
    max_keys: 4096,
    max_folded_uids: 8192,
};

#[derive(Debug)]
struct KeyWindow {
    start: Instant,
    logged: u32,
    suppressed: u64,
}

#[derive(Debug, Default)]
struct Fold {
    count: u64,
    uids: HashSet<u32>,
    untracked: u64,
    first_uid: Option<u32>,
    last_uid: Option<u32>,
}

#[derive(Debug)]
struct BindingWindow {
    start: Instant,
    logged: u32,
    fold: Option<Fold>,
}

/// A window in the expiry queues: a key's, or a (kind, binding)'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Key(Key),
    Binding(Kind, usize),
}

/// The limiter's state. Every operation costs O(1) amortised, whatever the number of keys.
#[derive(Debug)]
pub struct RateLimiter {
    limits: Limits,
    keys: HashMap<Key, KeyWindow>,
    bindings: HashMap<(Kind, usize), BindingWindow>,
    /// Every window's start, oldest first (all windows are equally long, so this is also
    /// the order in which they end); entries of forgotten windows are skipped.
    starts: VecDeque<(Instant, Slot)>,
    /// The ends of windows with something to report, soonest first (stale entries skipped).
    reports_due: BinaryHeap<Reverse<(Instant, Slot)>>,
    folded_uids: usize,
    /// Set when forgetting idle keys freed too little; cleared when a window ends.
    keys_saturated: bool,
    pending: Vec<Report>,
}

impl RateLimiter {
    /// A limiter with these limits.
    pub fn new(limits: Limits) -> RateLimiter {
        RateLimiter {
            limits,
            keys: HashMap::new(),
            bindings: HashMap::new(),
            starts: VecDeque::new(),
            reports_due: BinaryHeap::new(),
            folded_uids: 0,
            keys_saturated: false,
            pending: Vec::new(),
        }
    }

    /// Whether the event `key` at `now` should be logged. Windows that ended by `now` are
    /// closed first; their counts wait in [`RateLimiter::take_reports`].
    pub fn admit(&mut self, key: Key, now: Instant) -> bool {
        self.expire(now);
        if let Some(w) = self.keys.get_mut(&key) {
            if w.logged >= self.limits.per_uid {
                if w.suppressed == 0 {
                    let end = w.start + self.limits.window;
                    self.reports_due.push(Reverse((end, Slot::Key(key))));
                }
                w.suppressed += 1;
                return false;
            }
        }
        let window = self.limits.window;
        let slot = Slot::Binding(key.kind, key.binding);
        let binding = self
            .bindings
            .entry((key.kind, key.binding))
            .or_insert_with(|| {
                self.starts.push_back((now, slot));
                BindingWindow {
                    start: now,
                    logged: 0,
                    fold: None,
                }
            });
        let room = binding.logged < self.limits.per_binding;
        if room && (self.keys.contains_key(&key) || self.make_room()) {
            let binding = self
                .bindings
                .get_mut(&(key.kind, key.binding))
                .expect("entered");
            binding.logged += 1;
            let starts = &mut self.starts;
            self.keys
                .entry(key)
                .or_insert_with(|| {
                    starts.push_back((now, Slot::Key(key)));
                    KeyWindow {
                        start: now,
                        logged: 0,
                        suppressed: 0,
                    }
                })
                .logged += 1;
            return true;
        }
        let binding = self
            .bindings
            .get_mut(&(key.kind, key.binding))
            .expect("entered");
        let end = binding.start + window;
        let reports_due = &mut self.reports_due;
        let fold = binding.fold.get_or_insert_with(|| {
            reports_due.push(Reverse((end, slot)));
            Fold::default()
        });
        fold.count += 1;
        fold.first_uid = fold.first_uid.or(key.uid);
        if let Some(uid) = key.uid {
            fold.last_uid = Some(uid);
            if !fold.uids.contains(&uid) {
                if self.folded_uids < self.limits.max_folded_uids {
                    fold.uids.insert(uid);
                    self.folded_uids += 1;
                } else {
                    fold.untracked += 1;
                }
            }
        }
        false
    }

    /// Makes room for one more key; false when the table stays full.
    fn make_room(&mut self) -> bool {
        if self.keys.len() < self.limits.max_keys {
            return true;
        }
        if self.keys_saturated {
            return false;
        }
        // Forget the keys that have nothing to report: their uids' later events are still
        // bounded by the (kind, binding) limit.
        self.keys.retain(|_, w| w.suppressed > 0);
        self.keys_saturated = self.keys.len() * 4 >= self.limits.max_keys * 3;
        self.keys.len() < self.limits.max_keys
    }

    /// Closes every window that ended by `now`, queueing its counts for
    /// [`RateLimiter::take_reports`].
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(start, slot)) = self.starts.front() {
            if start + self.limits.window > now {
                break;
            }
            self.starts.pop_front();
            self.close(start, slot);
        }
    }

    fn close(&mut self, start: Instant, slot: Slot) {
        match slot {
            Slot::Key(key) => {
                if self.keys.get(&key).is_some_and(|w| w.start == start) {
                    let w = self.keys.remove(&key).expect("present");
                    self.keys_saturated = false;
                    if w.suppressed > 0 {
                        self.pending.push(Report::Uid {
                            key,
                            count: w.suppressed,
                        });
                    }
                }
            }
            Slot::Binding(kind, binding) => {
                let current = self.bindings.get(&(kind, binding));
                if current.is_some_and(|w| w.start == start) {
                    let w = self.bindings.remove(&(kind, binding)).expect("present");
                    if let Some(fold) = w.fold {
                        let report = self.folded(kind, binding, fold);
                        self.pending.push(report);
                    }
                }
            }
        }
    }

    fn folded(&mut self, kind: Kind, binding: usize, fold: Fold) -> Report {
        self.folded_uids -= fold.uids.len();
        Report::Folded {
            kind,
            binding,
            count: fold.count,
            uids: fold.uids.len(),
            untracked: fold.untracked,
            first_uid: fold.first_uid,
            last_uid: fold.last_uid,
        }
    }

    /// The counts of the windows closed so far, to log now.
    pub fn take_reports(&mut self) -> Vec<Report> {
        std::mem::take(&mut self.pending)
    }

    /// Closes every window, for the stop line: all counts still pending.
    pub fn drain(&mut self) -> Vec<Report> {
        while let Some((start, slot)) = self.starts.pop_front() {
            self.close(start, slot);
        }
        self.reports_due.clear();
        self.take_reports()
    }

    /// When the next window with something to report ends, so the serve loop can wake to
    /// report it. Windows with nothing to report end silently at the next event.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((end, slot))) = self.reports_due.peek() {
            let start = end - self.limits.window;
            let live = match slot {
                Slot::Key(key) => self.keys.get(&key).is_some_and(|w| w.start == start),
                Slot::Binding(kind, b) => self
                    .bindings
                    .get(&(kind, b))
                    .is_some_and(|w| w.start == start),
            };
            if live {
                return Some(end);
            }
            self.reports_due.pop();
        }
        None
    }
}

#[cfg(test)]
mod tests;
