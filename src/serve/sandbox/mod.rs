//! Step 7b of start-up: the sandbox around the serving process, installed after the drop
//! was verified and before the first client is accepted.
//!
//! * `seccomp`: an allowlist of system calls, anything else kills the process;
//! * `landlock`: no filesystem or network access beyond what the serve loop needs (best
//!   effort, by kernel ABI).
//!
//! Name lookups are switched to the local files first (`sys::nss_files_only`), so that no
//! NSS module (sssd, LDAP, systemd-userdb, nscd) runs inside the sandbox with system calls
//! nobody reviewed: neither for the names in audit lines nor for those a reload resolves.

mod landlock;
mod seccomp;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

use crate::config::LogTarget;
use crate::serve::sys;

pub use landlock::{Landlock, LandlockError, RulesetState};
pub use seccomp::{Seccomp, SeccompError, SeccompStatus};

/// Where glibc's syslog(3) connects (`_PATH_LOG`).
const SYSLOG_SOCKET: &str = "/dev/log";

/// The sandbox could not be installed; the daemon must not serve.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Name lookups could not be limited to the local files.
    #[error("cannot limit name lookups to /etc/passwd and /etc/group: {0}")]
    Nss(std::io::Error),
    /// The Landlock ruleset could not be built or enforced.
    #[error(transparent)]
    Landlock(#[from] LandlockError),
    /// The seccomp filter could not be built or installed.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
}

/// What the sandbox reached, for the `event=drop` audit line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The seccomp filter's state.
    pub seccomp: SeccompStatus,
    /// The Landlock ruleset's state.
    pub landlock: RulesetState,
    /// The Landlock ABI of the running kernel as far as the crate knows it (0: none).
    pub landlock_abi: i32,
}

impl Status {
    /// Appends `seccomp=… landlock=… landlock_abi=…` to an audit line.
    pub fn audit(&self, line: crate::serve::audit::Line) -> crate::serve::audit::Line {
        line.field("seccomp", self.seccomp)
            .field("landlock", self.landlock)
            .field("landlock_abi", self.landlock_abi)
    }
}

/// The directory of the configuration file `path`, by its real path, for the rule that lets
/// a reload read the file again (a new file renamed into place too, as editors save):
/// opened before the drop (the run user may not reach it), as an O_PATH descriptor that
/// grants nothing by itself. A file right in `/` gets the rule on itself instead, since a
/// rule on `/` would let the daemon read every file its user may: a reload then reads that
/// very file, edited in place, and not one renamed over it. `None` if it cannot be opened: a
/// reload then cannot read the file, and says so.
pub fn config_dir(path: &Path) -> Option<OwnedFd> {
    let real = std::fs::canonicalize(path).ok()?;
    let parent = real.parent()?;
    let (target, kind) = match parent == Path::new("/") {
        true => (real.as_path(), OFlag::empty()),
        false => (parent, OFlag::O_DIRECTORY),
    };
    open(
        target,
        OFlag::O_PATH | kind | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

/// Installs the whole sandbox: local-files name lookups and the time zone loaded first,
/// then Landlock (with a read rule on `config_dir`, from [`config_dir`]), then seccomp.
pub fn install(
    socket_dir: BorrowedFd<'_>,
    log: LogTarget,
    config_dir: Option<&OwnedFd>,
) -> Result<Status, SandboxError> {
    sys::nss_files_only().map_err(SandboxError::Nss)?;
    sys::tzset();
    let syslog = (log == LogTarget::Syslog).then(|| Path::new(SYSLOG_SOCKET));
    let config_dir = config_dir.map(AsFd::as_fd);
    let landlock = Landlock::prepare(socket_dir, syslog, config_dir)?;
    let seccomp = Seccomp::prepare()?;
    let (landlock, landlock_abi) = landlock.enforce()?;
    let seccomp = seccomp.enforce()?;
    Ok(Status {
        seccomp,
        landlock,
        landlock_abi,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn the_allowlist_compiles_for_this_architecture() {
        let program = seccomp::filter::program()
            .unwrap()
            .expect("a filter on this architecture");
        // The architecture check, one comparison per system call, and the default action.
        assert!(program.len() > seccomp::filter::allowlist().len() + 3);
    }

    #[test]
    fn the_drop_line_states_what_was_reached() {
        let status = Status {
            seccomp: SeccompStatus::KillProcess,
            landlock: RulesetState::Partial,
            landlock_abi: 7,
        };
        let line = status.audit(crate::serve::audit::Line::new("drop"));
        assert_eq!(
            line.as_str(),
            "event=drop seccomp=kill-process landlock=partial landlock_abi=7"
        );
    }
}
