//! systemd's notification protocol (sd_notify(3)), written out: one datagram socket,
//! connected to `$NOTIFY_SOCKET` at start-up while the daemon may still open anything, then
//! used to say `READY=1`, `STATUS=…` and `STOPPING=1`, and to hand sockets to the service
//! manager's file descriptor store (src/fdstore.rs says which).
//!
//! Without `$NOTIFY_SOCKET` every call is a no-op. A failed send is logged (once) and never
//! stops the daemon: the sockets work whether or not systemd heard about them.
//!
//! System calls after the privilege drop (for the seccomp allowlist): `sendmsg(2)` on the
//! descriptor connected before the drop, nothing else; no `socket(2)`, no `connect(2)`. The
//! STATUS throttle reads the monotonic clock (vDSO `clock_gettime`). systemd keeps its
//! notification socket across `daemon-reexec`, so the one connection stays valid.

use std::cell::Cell;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};

use crate::audit::Line;
use crate::grant::Counters;
use crate::sys;

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
/// The shortest interval between two STATUS updates from the serve loop.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(5);

/// `$NOTIFY_SOCKET` is set but cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Not a path and not `@abstract`.
    #[error(
        "NOTIFY_SOCKET=`{0}` is not a socket address portbinder can use: it must be an absolute \
         path or @NAME (an abstract socket); unset NOTIFY_SOCKET when not started by systemd"
    )]
    Address(String),
    /// socket(2) or connect(2) failed.
    #[error(
        "cannot connect to NOTIFY_SOCKET `{address}`: {errno}: start portbinder from a systemd unit \
         with Type=notify, or unset NOTIFY_SOCKET"
    )]
    Connect {
        /// The variable's value.
        address: String,
        /// The cause.
        errno: Errno,
    },
}

/// The connection to the service manager, or nothing when there is none.
#[derive(Debug, Default)]
pub struct Notifier {
    socket: Option<OwnedFd>,
    warned: Cell<bool>,
}

impl Notifier {
    /// Connects to `$NOTIFY_SOCKET` and removes it from the environment; without it (or
    /// with it empty), a notifier that does nothing. Call at start-up, single-threaded.
    pub fn from_env() -> Result<Notifier, NotifyError> {
        let value = std::env::var_os(NOTIFY_SOCKET).map(|v| v.to_string_lossy().into_owned());
        sys::unset_env_single_threaded(NOTIFY_SOCKET);
        match value.as_deref() {
            None | Some("") => Ok(Notifier::default()),
            Some(address) => Notifier::connect(address),
        }
    }

    /// Connects a close-on-exec datagram socket to `address` (a path, or `@name` for an
    /// abstract socket).
    pub fn connect(address: &str) -> Result<Notifier, NotifyError> {
        let connect_error = |errno| NotifyError::Connect {
            address: address.to_owned(),
            errno,
        };
        let addr = parse_address(address)?.map_err(connect_error)?;
        let fd = socket::socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(connect_error)?;
        socket::connect(fd.as_raw_fd(), &addr).map_err(connect_error)?;
        Ok(Notifier::from_socket(fd))
    }

    /// A notifier sending on an already connected datagram socket.
    pub fn from_socket(socket: OwnedFd) -> Notifier {
        Notifier {
            socket: Some(socket),
            warned: Cell::new(false),
        }
    }

    /// Whether there is a service manager to notify.
    pub fn is_enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// Start-up is complete and the privileges are dropped: `READY=1` and a first STATUS.
    pub fn ready(&self, bindings: usize) {
        let status = status_text(bindings, Counters::default());
        self.send(&format!("READY=1\nSTATUS={status}"), &[]);
    }

    /// The daemon stops (after `signal`): `STOPPING=1` with the final counters.
    pub fn stopping(&self, signal: &str, counters: Counters) {
        let (grants, denials) = (counters.grants, counters.denials);
        self.send(
            &format!(
                "STOPPING=1\nSTATUS=stopping on {signal} after {grants} grants, {denials} denials"
            ),
            &[],
        );
    }

    /// Sends one notification (newline-separated `KEY=VALUE` assignments) with `fds`
    /// attached. A failure is logged once; the daemon carries on either way.
    pub fn send(&self, state: &str, fds: &[RawFd]) {
        let Some(socket) = &self.socket else {
            return;
        };
        let rights = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
        let sent = socket::sendmsg::<UnixAddr>(
            socket.as_raw_fd(),
            &[IoSlice::new(state.as_bytes())],
            cmsgs,
            MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
            None,
        );
        if let Err(errno) = sent {
            if !self.warned.replace(true) {
                let what = state.lines().next().unwrap_or_default();
                log::warn!(
                    "{}",
                    Line::new("error")
                        .field("op", "notify")
                        .field("message", what)
                        .field("error", errno.desc())
                        .field(
                            "action",
                            "systemd may miss this and later notifications; serving goes on"
                        )
                );
            }
        }
    }
}

/// What `STATUS=` says: the bindings served and the grants and denials so far.
pub fn status_text(bindings: usize, counters: Counters) -> String {
    let plural = if bindings == 1 { "" } else { "s" };
    format!(
        "serving {bindings} binding{plural}: {} grants, {} denials",
        counters.grants, counters.denials
    )
}

/// The socket address of a `$NOTIFY_SOCKET` value: `Err` for a value that is no address
/// at all, `Ok(Err)` for one the kernel cannot take (too long, a NUL inside).
fn parse_address(value: &str) -> Result<Result<UnixAddr, Errno>, NotifyError> {
    if let Some(name) = value.strip_prefix('@') {
        Ok(UnixAddr::new_abstract(name.as_bytes()))
    } else if value.starts_with('/') {
        Ok(UnixAddr::new(value))
    } else {
        Err(NotifyError::Address(value.to_owned()))
    }
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
            self.notifier.send(&format!("STATUS={text}"), &[]);
            self.shown = (counters.grants, counters.denials);
            self.last = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn addresses_are_paths_or_abstract_names() {
        assert!(parse_address("/run/systemd/notify").unwrap().is_ok());
        let abstract_addr = parse_address("@sd-notify").unwrap().unwrap();
        assert_eq!(abstract_addr.as_abstract(), Some(&b"sd-notify"[..]));
        for bad in ["vsock:2:1234", "relative/path", "notify"] {
            let message = parse_address(bad).unwrap_err().to_string();
            assert!(
                message.contains(bad) && message.contains("@NAME"),
                "{message}"
            );
        }
        let long = format!("/{}", "x".repeat(200));
        assert_eq!(
            parse_address(&long).unwrap().unwrap_err(),
            Errno::ENAMETOOLONG
        );
    }

    #[test]
    fn ready_and_stopping_carry_a_status() {
        let (notifier, systemd) = pair();
        notifier.ready(2);
        let counters = Counters {
            grants: 7,
            denials: 1,
        };
        notifier.stopping("SIGTERM", counters);
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
    fn without_a_manager_nothing_is_due_and_nothing_fails() {
        let notifier = Notifier::default();
        assert!(!notifier.is_enabled());
        notifier.ready(1);
        notifier.send("STATUS=x", &[0]);
        let status = Status::new(&notifier, 1);
        let changed = Counters {
            grants: 3,
            denials: 3,
        };
        assert_eq!(status.due(changed), None);
    }

    #[test]
    fn a_failed_send_is_survived() {
        let (notifier, systemd) = pair();
        drop(systemd);
        notifier.ready(1);
        notifier.stopping("SIGTERM", Counters::default());
        assert!(notifier.warned.get());
    }
}
