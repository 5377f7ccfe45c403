//! systemd's notification protocol (sd_notify(3)), written out: one datagram socket,
//! connected to `$NOTIFY_SOCKET` at start-up while the daemon may still open anything, then
//! used to say `READY=1`, `STATUS=…`, `RELOADING=1` and `STOPPING=1`, and to hand sockets to
//! the service manager's file descriptor store (src/serve/fdstore.rs says which).
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

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};

use crate::serve::audit::Line;
use crate::serve::sys;

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

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

    /// Start-up is complete and the privileges are dropped: `READY=1` with a first
    /// `STATUS=` text.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"), &[]);
    }

    /// A reload begins (SIGHUP): `RELOADING=1` with `MONOTONIC_USEC=`, the CLOCK_MONOTONIC
    /// time in microseconds, as sd_notify(3) asks; [`Notifier::ready`] ends it.
    pub fn reloading(&self, monotonic_usec: u64) {
        self.send(
            &format!("RELOADING=1\nMONOTONIC_USEC={monotonic_usec}"),
            &[],
        );
    }

    /// The daemon stops: `STOPPING=1` with a last `STATUS=` text.
    pub fn stopping(&self, status: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={status}"), &[]);
    }

    /// A new `STATUS=` text.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"), &[]);
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
    fn ready_reloading_stopping_and_status_are_one_datagram_each() {
        let (notifier, systemd) = pair();
        notifier.ready("up");
        notifier.status("busy");
        notifier.reloading(1234);
        notifier.ready("reloaded");
        notifier.stopping("down");
        assert_eq!(
            received(&systemd),
            [
                "READY=1\nSTATUS=up",
                "STATUS=busy",
                "RELOADING=1\nMONOTONIC_USEC=1234",
                "READY=1\nSTATUS=reloaded",
                "STOPPING=1\nSTATUS=down"
            ]
        );
    }

    #[test]
    fn without_a_manager_nothing_fails() {
        let notifier = Notifier::default();
        assert!(!notifier.is_enabled());
        notifier.ready("x");
        notifier.send("STATUS=x", &[0]);
    }

    #[test]
    fn a_failed_send_is_survived() {
        let (notifier, systemd) = pair();
        drop(systemd);
        notifier.ready("x");
        notifier.stopping("y");
        assert!(notifier.warned.get());
    }
}
