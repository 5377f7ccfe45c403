//! Collapses floods of identical audit events: per key (event kind, binding, uid) at most
//! `burst` lines per window; the rest are counted and reported in one `event=suppressed`
//! line when the window ends (or at stop). The limiter only decides whether to *log*; the
//! grant or denial itself always happens at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What a rate-limited event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The event kind (`grant`, `deny`, `error`).
    pub kind: &'static str,
    /// The binding's name (`*` once the table is full).
    pub binding: String,
    /// The peer's uid.
    pub uid: u32,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    logged: u32,
    suppressed: u64,
}

/// A bounded table of per-key windows.
#[derive(Debug)]
pub struct RateLimiter {
    window: Duration,
    burst: u32,
    max_keys: usize,
    windows: HashMap<Key, Window>,
}

impl RateLimiter {
    /// A limiter letting `burst` lines per key through each `window`, tracking at most
    /// `max_keys` keys (beyond that, new keys share one overflow key).
    pub fn new(window: Duration, burst: u32, max_keys: usize) -> RateLimiter {
        RateLimiter {
            window,
            burst,
            max_keys,
            windows: HashMap::new(),
        }
    }

    /// Whether an event with `key` should be logged now. Also returns, for a key whose
    /// previous window ended with suppressed events, their count (to log first).
    pub fn admit(&mut self, mut key: Key, now: Instant) -> (bool, Option<(Key, u64)>) {
        if !self.windows.contains_key(&key) && self.windows.len() >= self.max_keys {
            self.windows
                .retain(|_, w| now.duration_since(w.start) < self.window || w.suppressed > 0);
            if self.windows.len() >= self.max_keys {
                key = Key {
                    kind: key.kind,
                    binding: "*".to_owned(),
                    uid: u32::MAX,
                };
            }
        }
        let window = self.window;
        let entry = self.windows.entry(key.clone()).or_insert(Window {
            start: now,
            logged: 0,
            suppressed: 0,
        });
        let mut report = None;
        if now.duration_since(entry.start) >= window {
            if entry.suppressed > 0 {
                report = Some((key, entry.suppressed));
            }
            *entry = Window {
                start: now,
                logged: 0,
                suppressed: 0,
            };
        }
        if entry.logged < self.burst {
            entry.logged += 1;
            (true, report)
        } else {
            entry.suppressed += 1;
            (false, report)
        }
    }

    /// Ends every window that is over, returning the suppressed counts to report, and
    /// forgets idle keys so the table stays small.
    pub fn expire(&mut self, now: Instant) -> Vec<(Key, u64)> {
        let window = self.window;
        let mut reports = Vec::new();
        self.windows.retain(|key, w| {
            if now.duration_since(w.start) < window {
                return true;
            }
            if w.suppressed > 0 {
                reports.push((key.clone(), w.suppressed));
            }
            false
        });
        reports
    }

    /// Every pending suppressed count, for the stop line.
    pub fn drain(&mut self) -> Vec<(Key, u64)> {
        self.windows
            .drain()
            .filter(|(_, w)| w.suppressed > 0)
            .map(|(k, w)| (k, w.suppressed))
            .collect()
    }

    /// When the next window with suppressed events ends, so the serve loop can wake to
    /// report it.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.windows
            .values()
            .filter(|w| w.suppressed > 0)
            .map(|w| w.start + self.window)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uid: u32) -> Key {
        Key {
            kind: "deny",
            binding: "http".into(),
            uid,
        }
    }

    #[test]
    fn collapses_a_flood_and_reports_the_count() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(Duration::from_secs(10), 3, 16);
        let logged = (0..100).filter(|_| rl.admit(key(7), t0).0).count();
        assert_eq!(logged, 3);
        assert!(rl.admit(key(8), t0).0, "other keys are not affected");
        assert_eq!(rl.next_deadline(), Some(t0 + Duration::from_secs(10)));
        assert_eq!(rl.expire(t0 + Duration::from_secs(5)), vec![]);
        assert_eq!(rl.expire(t0 + Duration::from_secs(10)), vec![(key(7), 97)]);
        assert_eq!(rl.next_deadline(), None);
        assert!(rl.admit(key(7), t0 + Duration::from_secs(11)).0);
    }

    #[test]
    fn reports_on_next_event_and_on_drain() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(Duration::from_secs(1), 1, 16);
        rl.admit(key(1), t0);
        rl.admit(key(1), t0);
        let (log, report) = rl.admit(key(1), t0 + Duration::from_secs(2));
        assert!(log);
        assert_eq!(report, Some((key(1), 1)));
        rl.admit(key(1), t0 + Duration::from_secs(2));
        assert_eq!(rl.drain(), vec![(key(1), 1)]);
    }

    #[test]
    fn table_is_bounded() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(Duration::from_secs(10), 1, 4);
        for uid in 0..1000 {
            rl.admit(key(uid), t0);
        }
        assert!(rl.windows.len() <= 5);
    }
}
