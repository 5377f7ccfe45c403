//! What the daemon reports about itself while it serves: the grant and denial counters,
//! and systemd's `STATUS=` text, sent after the counters change at most every
//! [`STATUS_INTERVAL`] (none while nothing changes). The counters live here, so that the
//! serve loop and the notifications share them without depending on each other.

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
}

impl<'a> Status<'a> {
    /// Starts from the STATUS that [`Notifier::ready`] sent (no grants, no denials).
    pub fn new(notifier: &'a Notifier, bindings: usize) -> Status<'a> {
        Status {
            notifier,
            bindings,
            shown: (0, 0),
            last: Instant::now(),
        }
    }

    /// When the serve loop should wake to send an update, if one is pending.
    pub fn due(&self, counters: Counters) -> Option<Instant> {
        let pending = (counters.grants, counters.denials) != self.shown;
        (pending && self.notifier.is_enabled()).then(|| self.last + STATUS_INTERVAL)
    }

    /// Sends the update if one is pending and due at `now`.
    pub fn tick(&mut self, now: Instant, counters: Counters) {
        if self.due(counters).is_some_and(|due| due <= now) {
            let text = status_text(self.bindings, counters);
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
