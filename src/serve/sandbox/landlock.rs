//! The Landlock half of the sandbox (best effort, by kernel ABI): no filesystem access but
//! reading files under /etc (passwd and group, for user names in audit lines; the default
//! configuration) and /proc (the peers' `comm`), under the configuration file's directory
//! (a reload reads the file again), removing files in the socket directory (the socket files,
//! at stop and when a reload removes a binding) and, on ABI 9+, connecting to the syslog
//! socket's directory (glibc's reconnect); no TCP or UDP bind, connect or send (ABI 4+, UDP
//! 10+); no signals or abstract Unix sockets beyond the sandbox (ABI 6+).

use std::fmt;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, LandlockStatus, PathBeneath, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, RulesetStatus, Scope,
};
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

/// The newest Landlock ABI this sandbox is written for; older kernels enforce what they
/// know (best effort), newer ones nothing more.
const LANDLOCK_ABI: ABI = ABI::V10;

/// The Landlock ruleset could not be built or enforced (a kernel without Landlock is no
/// error: the drop line then says `landlock=none`).
#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    /// A path a rule needs could not be opened.
    #[error("cannot open {} for a Landlock rule: {errno}", path.display())]
    Path {
        /// The path.
        path: PathBuf,
        /// The cause.
        errno: nix::Error,
    },
    /// Landlock failed on a kernel that has it.
    #[error("cannot install the Landlock ruleset: {0}")]
    Ruleset(#[from] landlock::RulesetError),
}

/// How much of the Landlock ruleset the kernel enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesetState {
    /// Everything this sandbox asks for (the kernel knows the newest ABI the ruleset is
    /// written for, or a newer one).
    Full,
    /// What the kernel's older ABI knows (see `landlock_abi`).
    Partial,
    /// Nothing: the kernel has no Landlock, or it is disabled.
    None,
}

impl fmt::Display for RulesetState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RulesetState::Full => "full",
            RulesetState::Partial => "partial",
            RulesetState::None => "none",
        })
    }
}

/// The Landlock ruleset, created (with its rules) and not yet enforced.
#[derive(Debug)]
pub struct Landlock(RulesetCreated);

impl Landlock {
    /// Builds the ruleset for a daemon whose sockets live in the directory `socket_dir` (the
    /// descriptor it checked and made them in: never reopened by path), that logs to the
    /// syslog socket `syslog`, if any, and reads its configuration again from `config_dir`,
    /// if any (its file's directory, opened before the drop).
    pub fn prepare(
        socket_dir: BorrowedFd<'_>,
        syslog: Option<&Path>,
        config_dir: Option<BorrowedFd<'_>>,
    ) -> Result<Landlock, LandlockError> {
        let socket_dir = socket_dir
            .try_clone_to_owned()
            .map_err(|e| LandlockError::Path {
                path: "the socket directory".into(),
                errno: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)),
            })?;
        let mut rules = vec![
            (dir("/etc")?, AccessFs::ReadFile),
            (dir("/proc")?, AccessFs::ReadFile),
            (socket_dir, AccessFs::RemoveFile),
        ];
        if let Some(config_dir) = config_dir {
            let config_dir = config_dir
                .try_clone_to_owned()
                .map_err(|e| LandlockError::Path {
                    path: "the configuration's directory".into(),
                    errno: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)),
                })?;
            rules.push((config_dir, AccessFs::ReadFile));
        }
        // glibc reconnects by path after the syslog daemon restarts; a restarted daemon
        // creates a new socket inode in the same directory, so the rule is on the directory
        // (of the target, when /dev/log is a symlink as under journald).
        if let Some(log_dir) = syslog
            .and_then(|p| std::fs::canonicalize(p).ok())
            .and_then(|p| p.parent().map(Path::to_path_buf))
        {
            rules.push((dir(&log_dir)?, AccessFs::ResolveUnix));
        }
        let mut ruleset = Ruleset::default()
            .handle_access(AccessFs::from_all(LANDLOCK_ABI))?
            .handle_access(AccessNet::from_all(LANDLOCK_ABI))?
            .scope(Scope::from_all(LANDLOCK_ABI))?
            .create()?;
        for (fd, access) in rules {
            ruleset = ruleset.add_rule(PathBeneath::new(fd, access))?;
        }
        Ok(Landlock(ruleset))
    }

    /// Restricts the calling process; returns how much the kernel enforces and its ABI.
    pub fn enforce(self) -> Result<(RulesetState, i32), LandlockError> {
        let status = self.0.restrict_self()?;
        let state = match status.ruleset {
            RulesetStatus::FullyEnforced => RulesetState::Full,
            RulesetStatus::PartiallyEnforced => RulesetState::Partial,
            RulesetStatus::NotEnforced => RulesetState::None,
        };
        let abi = match status.landlock {
            LandlockStatus::Available { effective_abi, .. } => effective_abi as i32,
            LandlockStatus::NotEnabled | LandlockStatus::NotImplemented => 0,
        };
        Ok((state, abi))
    }
}

/// Opens a directory for a Landlock rule without following a symlink in its last
/// component: the rule must cover the directory that was checked, not where a link points.
fn dir(path: impl AsRef<Path>) -> Result<OwnedFd, LandlockError> {
    let path = path.as_ref();
    open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| LandlockError::Path {
        path: path.to_owned(),
        errno,
    })
}
