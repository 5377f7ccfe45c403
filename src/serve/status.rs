//! What the daemon reports about itself while it serves: the grant and denial counters,
//! and systemd's `STATUS=` text, sent after the counters change at most every
//! [`STATUS_INTERVAL`] (none while nothing changes). The counters live here, so that the
//! serve loop and the notifications share them without depending on each other.
//!
//! A reload ends with `READY=1` and a STATUS= that starts with its outcome
//! ([`reload_text`]). Later updates go back to the counters, and after a refused reload
//! add [`REFUSED_NOTE`] until a reload is applied or finds nothing to change: the file on
//! disk then says something that is not served, which `systemctl status` should show.

use std::time::{Duration, Instant};

use crate::serve::notify::Notifier;

/// The shortest interval between two STATUS updates from the serve loop.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(5);

/// What the serve loop counted.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// Grants sent.
    pub grants: u64,
    /// Denials sent (or attempted).
    pub denials: u64,
}

/// What `STATUS=` says: the bindings served and the grants and denials so far.
pub fn status_text(bindings: usize, counters: Counters) -> String {
    let plural = if bindings == 1 { "" } else { "s" };
    format!(
        "serving {bindings} binding{plural}: {} grants, {} denials",
        counters.grants, counters.denials
    )
}

/// What the updates after a refused reload add to the counters.
pub const REFUSED_NOTE: &str = "last reload refused, see the log";

/// The STATUS= of the `READY=1` that ends a reload: its outcome, then what is served.
pub fn reload_text(outcome: &str, bindings: usize, counters: Counters) -> String {
    format!("{outcome}; {}", status_text(bindings, counters))
}

/// `STOPPING=1`'s last status: the signal and the final counters.
pub fn stopping_text(signal: &str, counters: Counters) -> String {
    let (grants, denials) = (counters.grants, counters.denials);
    format!("stopping on {signal} after {grants} grants, {denials} denials")
}

/// Keeps systemd's STATUS= current while serving: after the counters change, one update
/// at most every [`STATUS_INTERVAL`], and none while nothing changes.
#[derive(Debug)]
pub struct Status<'a> {
    notifier: &'a Notifier,
    bindings: usize,
    shown: (u64, u64),
    last: Instant,
    note: Option<&'static str>,
}

impl<'a> Status<'a> {
    /// Starts from the STATUS that [`Notifier::ready`] sent (no grants, no denials).
    pub fn new(notifier: &'a Notifier, bindings: usize) -> Status<'a> {
        Status {
            notifier,
            bindings,
            shown: (0, 0),
            last: Instant::now(),
            note: None,
        }
    }

    /// A reload ended at `now`, and said so with `READY=1` and its STATUS= (which showed
    /// `counters`): later updates count `bindings` (fewer, if it removed some) and, after
    /// a `refused` one, add [`REFUSED_NOTE`].
    pub fn reloaded(&mut self, now: Instant, bindings: usize, counters: Counters, refused: bool) {
        self.bindings = bindings;
        self.shown = (counters.grants, counters.denials);
        self.last = now;
        self.note = refused.then_some(REFUSED_NOTE);
    }

    /// When the serve loop should wake to send an update, if one is pending.
    pub fn due(&self, counters: Counters) -> Option<Instant> {
        let pending = (counters.grants, counters.denials) != self.shown;
        (pending && self.notifier.is_enabled()).then(|| self.last + STATUS_INTERVAL)
    }

    /// Sends the update if one is pending and due at `now`.
    pub fn tick(&mut self, now: Instant, counters: Counters) {
        if self.due(counters).is_some_and(|due| due <= now) {
            let mut text = status_text(self.bindings, counters);
            if let Some(note) = self.note {
                text = format!("{text}; {note}");
            }
            self.notifier.status(&text);
            self.shown = (counters.grants, counters.denials);
            self.last = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixDatagram;

    fn pair() -> (Notifier, UnixDatagram) {
        let (ours, theirs) = UnixDatagram::pair().unwrap();
        theirs.set_nonblocking(true).unwrap();
        (Notifier::from_socket(OwnedFd::from(ours)), theirs)
    }

    fn received(socket: &UnixDatagram) -> Vec<String> {
        let mut buf = [0u8; 4096];
        std::iter::from_fn(|| {
            let n = socket.recv(&mut buf).ok()?;
            Some(String::from_utf8_lossy(&buf[..n]).into_owned())
        })
        .collect()
    }

    #[test]
    fn ready_and_stopping_carry_a_status() {
        let (notifier, systemd) = pair();
        notifier.ready(&status_text(2, Counters::default()));
        let counters = Counters {
            grants: 7,
            denials: 1,
        };
        notifier.stopping(&stopping_text("SIGTERM", counters));
        assert_eq!(
            received(&systemd),
            [
                "READY=1\nSTATUS=serving 2 bindings: 0 grants, 0 denials",
                "STOPPING=1\nSTATUS=stopping on SIGTERM after 7 grants, 1 denials",
            ]
        );
    }

    #[test]
    fn status_updates_are_throttled_and_only_sent_on_change() {
        let (notifier, systemd) = pair();
        let mut status = Status::new(&notifier, 1);
        let start = status.last;
        let none = Counters::default();
        assert_eq!(status.due(none), None, "nothing changed, nothing due");
        let one = Counters {
            grants: 1,
            denials: 0,
        };
        assert_eq!(status.due(one), Some(start + STATUS_INTERVAL));
        status.tick(start + Duration::from_secs(1), one);
        assert!(received(&systemd).is_empty(), "sent before the interval");
        status.tick(start + STATUS_INTERVAL, one);
        assert_eq!(
            received(&systemd),
            ["STATUS=serving 1 binding: 1 grants, 0 denials"]
        );
        assert_eq!(status.due(one), None, "sent, nothing pending");
        status.tick(start + STATUS_INTERVAL * 3, one);
        assert!(
            received(&systemd).is_empty(),
            "unchanged counters are not resent"
        );
    }

    #[test]
    fn after_a_refused_reload_the_updates_say_so_until_one_is_applied() {
        let (notifier, systemd) = pair();
        let mut status = Status::new(&notifier, 2);
        let start = status.last;
        let none = Counters::default();
        notifier.ready(&reload_text("reload refused: x: restart to apply", 2, none));
        status.reloaded(start, 2, none, true);
        assert_eq!(
            status.due(none),
            None,
            "the reload's STATUS showed these counters"
        );
        let one = Counters {
            grants: 1,
            denials: 0,
        };
        status.tick(start + STATUS_INTERVAL, one);
        status.reloaded(start + STATUS_INTERVAL, 1, one, false);
        let two = Counters {
            grants: 2,
            denials: 0,
        };
        status.tick(start + STATUS_INTERVAL * 2, two);
        assert_eq!(
            received(&systemd),
            [
                "READY=1\nSTATUS=reload refused: x: restart to apply; serving 2 bindings: 0 grants, 0 denials",
                "STATUS=serving 2 bindings: 1 grants, 0 denials; last reload refused, see the log",
                "STATUS=serving 1 binding: 2 grants, 0 denials",
            ]
        );
    }

    #[test]
    fn without_a_manager_nothing_is_due() {
        let notifier = Notifier::default();
        let status = Status::new(&notifier, 1);
        let changed = Counters {
            grants: 3,
            denials: 3,
        };
        assert_eq!(status.due(changed), None);
    }
}
