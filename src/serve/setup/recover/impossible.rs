//! Why this daemon cannot take a descriptor from another process: an old kernel, Yama, a
//! missing CAP_SYS_PTRACE, a security module, another pid namespace. Each reason says what
//! to do instead.

use std::io;

use nix::errno::Errno;

use super::rules;
use crate::serve::setup::pinned::PinError;

/// Why this daemon cannot take a descriptor from another process here.
#[derive(Debug, thiserror::Error)]
pub enum Impossible {
    /// pidfd_open(2) or pidfd_getfd(2) does not exist.
    #[error(
        "{call}(2) needs Linux {since} or later, and this kernel is {release}: let a service \
         manager keep the sockets (systemd's fd store), or stop the programs holding the port"
    )]
    KernelTooOld {
        /// The missing call.
        call: &'static str,
        /// The first kernel that has it.
        since: &'static str,
        /// This kernel's release.
        release: String,
    },
    /// No CAP_SYS_PTRACE, which looking into another user's descriptors and taking one
    /// need.
    #[error(
        "reading another user's descriptors (/proc/PID/fd) and taking one (pidfd_getfd(2)) need \
         CAP_SYS_PTRACE, and this daemon was started without it{yama}: start it as root with \
         its capabilities, or let a service manager keep the sockets (systemd's fd store)"
    )]
    NoPtrace {
        /// `" (and Yama's ptrace_scope N requires it too)"`, or empty.
        yama: String,
    },
    /// Yama's ptrace_scope 3 forbids every ptrace attach, pidfd_getfd included.
    #[error(
        "Yama's kernel.yama.ptrace_scope is 3, which forbids taking another process's \
         descriptors until the next boot: let a service manager keep the sockets (systemd's fd \
         store), or stop the programs holding the port"
    )]
    Yama,
    /// Refused although CAP_SYS_PTRACE is held.
    #[error(
        "the kernel refused {call}(2) ({error}) although this daemon has CAP_SYS_PTRACE: the \
         process has capabilities this daemon lacks, or a security module (AppArmor, SELinux) \
         forbids it; let a service manager keep the sockets, or stop the programs holding the \
         port"
    )]
    Refused {
        /// The call.
        call: &'static str,
        /// The error.
        error: io::Error,
    },
    /// The pidfd and /proc disagree about which process a pid is.
    #[error("{0}: start the daemon with a /proc of its own pid namespace")]
    Namespace(PinError),
    /// Another failure of the call.
    #[error("{call}(2) failed: {source}")]
    Failed {
        /// The call.
        call: &'static str,
        /// The cause.
        source: io::Error,
    },
}

impl Impossible {
    /// Why `call` (readlink of /proc/PID/fd, pidfd_open or pidfd_getfd) failed with
    /// `error`, looking at the kernel, Yama (which only guards pidfd_getfd) and this
    /// process's capabilities for the reason.
    pub fn diagnose(call: &'static str, error: io::Error) -> Impossible {
        let yama = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
            .ok()
            .and_then(|s| s.trim().parse::<u8>().ok())
            .filter(|_| call == "pidfd_getfd");
        Impossible::explain(call, error, yama, rules::can_ptrace())
    }

    /// [`Impossible::diagnose`] with Yama's scope (`None` without Yama) and whether
    /// CAP_SYS_PTRACE is effective given.
    pub fn explain(
        call: &'static str,
        error: io::Error,
        yama: Option<u8>,
        ptrace: bool,
    ) -> Impossible {
        match Errno::from_raw(error.raw_os_error().unwrap_or(0)) {
            Errno::ENOSYS => Impossible::KernelTooOld {
                call,
                since: if call == "pidfd_open" { "5.3" } else { "5.6" },
                release: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                    .map_or_else(|_| "unknown".to_owned(), |r| r.trim().to_owned()),
            },
            Errno::EPERM | Errno::EACCES if yama == Some(3) => Impossible::Yama,
            Errno::EPERM | Errno::EACCES if !ptrace => Impossible::NoPtrace {
                yama: match yama {
                    Some(n @ 1..=2) => format!(" (and Yama's ptrace_scope {n} requires it too)"),
                    _ => String::new(),
                },
            },
            Errno::EPERM | Errno::EACCES => Impossible::Refused { call, error },
            _ => Impossible::Failed {
                call,
                source: error,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errno(e: i32) -> io::Error {
        io::Error::from_raw_os_error(e)
    }

    #[test]
    fn each_reason_for_an_impossible_recovery_is_told_apart() {
        let old = Impossible::explain("pidfd_getfd", errno(libc::ENOSYS), None, true);
        assert!(
            old.to_string()
                .starts_with("pidfd_getfd(2) needs Linux 5.6 or later"),
            "{old}"
        );
        let old = Impossible::explain("pidfd_open", errno(libc::ENOSYS), None, true);
        assert!(old.to_string().contains("needs Linux 5.3"), "{old}");
        let yama = Impossible::explain("pidfd_getfd", errno(libc::EPERM), Some(3), true);
        assert!(matches!(yama, Impossible::Yama), "{yama}");
        assert!(yama.to_string().contains("ptrace_scope is 3"));
        let no_cap = Impossible::explain("pidfd_getfd", errno(libc::EPERM), Some(2), false);
        assert!(
            no_cap.to_string().contains("need CAP_SYS_PTRACE"),
            "{no_cap}"
        );
        assert!(
            no_cap
                .to_string()
                .contains("ptrace_scope 2 requires it too"),
            "{no_cap}"
        );
        let no_cap = Impossible::explain("pidfd_getfd", errno(libc::EPERM), None, false);
        assert!(!no_cap.to_string().contains("Yama"), "{no_cap}");
        let lsm = Impossible::explain("pidfd_getfd", errno(libc::EPERM), Some(1), true);
        assert!(lsm.to_string().contains("security module"), "{lsm}");
        let other = Impossible::explain("pidfd_getfd", errno(libc::EMFILE), None, true);
        assert!(matches!(other, Impossible::Failed { .. }), "{other}");
    }
}
