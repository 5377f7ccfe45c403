//! Step 7b of start-up: the sandbox around the serving process, installed after the drop
//! was verified and before the first client is accepted.
//!
//! * **seccomp** (x86_64 and aarch64): an allowlist of the system calls the serve loop,
//!   glibc's syslog (including its reconnect after the syslog daemon restarts), the
//!   local-files name lookups, the sd_notify socket and the clean stop need, several of
//!   them narrowed by argument. Anything else kills the process (SECURITY.md says why kill
//!   and not EPERM). Installed with TSYNC, so it covers every thread (there is one). On
//!   other architectures the daemon runs without it and says so in the `event=drop` line.
//! * **Landlock** (best effort, by kernel ABI): no filesystem access but reading files under
//!   /etc (passwd and group, for user names in audit lines) and /proc (the peers'
//!   `comm`), removing files in the socket directory (the socket files, at stop) and, on
//!   ABI 9+, connecting to the syslog socket's directory (glibc's reconnect); no TCP or UDP
//!   bind, connect or send (ABI 4+, UDP 10+); no signals or abstract Unix sockets beyond
//!   the sandbox (ABI 6+).
//!
//! Name lookups are switched to the local files first ([`crate::sys::nss_files_only`]), so
//! that no NSS module (sssd, LDAP, systemd-userdb, nscd) runs inside the sandbox with system
//! calls nobody reviewed.

use std::fmt;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, LandlockStatus, PathBeneath, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, RulesetStatus, Scope,
};
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

use crate::config::LogTarget;
use crate::sys;

/// The newest Landlock ABI this sandbox is written for; older kernels enforce what they
/// know (best effort), newer ones nothing more.
const LANDLOCK_ABI: ABI = ABI::V10;
/// Where glibc's syslog(3) connects (`_PATH_LOG`).
const SYSLOG_SOCKET: &str = "/dev/log";

/// The sandbox could not be installed; the daemon must not serve.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Name lookups could not be limited to the local files.
    #[error("cannot limit name lookups to /etc/passwd and /etc/group: {0}")]
    Nss(std::io::Error),
    /// A path a Landlock rule needs could not be opened.
    #[error("cannot open {} for a Landlock rule: {errno}", path.display())]
    Path {
        /// The path.
        path: PathBuf,
        /// The cause.
        errno: nix::Error,
    },
    /// Landlock failed on a kernel that has it (a kernel without Landlock is no error: the
    /// drop line then says `landlock=none`).
    #[error("cannot install the Landlock ruleset: {0}")]
    Landlock(#[from] landlock::RulesetError),
    /// The seccomp filter could not be built or installed.
    #[error("cannot install the seccomp filter: {0}")]
    Seccomp(String),
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

/// Whether the seccomp filter is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeccompStatus {
    /// Installed on every thread; a system call outside the allowlist kills the process.
    KillProcess,
    /// No allowlist exists for this architecture.
    UnsupportedArch,
}

/// How much of the Landlock ruleset the kernel enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesetState {
    /// Everything this sandbox asks for (the kernel knows [`LANDLOCK_ABI`] or newer).
    Full,
    /// What the kernel's older ABI knows (see `landlock_abi`).
    Partial,
    /// Nothing: the kernel has no Landlock, or it is disabled.
    None,
}

impl fmt::Display for SeccompStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SeccompStatus::KillProcess => "kill-process",
            SeccompStatus::UnsupportedArch => "unsupported-arch",
        })
    }
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

impl Status {
    /// Appends `seccomp=… landlock=… landlock_abi=…` to an audit line.
    pub fn audit(&self, line: crate::audit::Line) -> crate::audit::Line {
        line.field("seccomp", self.seccomp)
            .field("landlock", self.landlock)
            .field("landlock_abi", self.landlock_abi)
    }
}

/// Installs the whole sandbox: local-files name lookups and the time zone loaded first,
/// then Landlock, then seccomp.
pub fn install(socket_dir: &Path, log: LogTarget) -> Result<Status, SandboxError> {
    sys::nss_files_only().map_err(SandboxError::Nss)?;
    sys::tzset();
    let syslog = (log == LogTarget::Syslog).then(|| Path::new(SYSLOG_SOCKET));
    let landlock = Landlock::prepare(socket_dir, syslog)?;
    let seccomp = Seccomp::prepare()?;
    let (landlock, landlock_abi) = landlock.enforce()?;
    let seccomp = seccomp.enforce()?;
    Ok(Status {
        seccomp,
        landlock,
        landlock_abi,
    })
}

/// The Landlock ruleset, created (with its rules) and not yet enforced.
#[derive(Debug)]
pub struct Landlock(RulesetCreated);

impl Landlock {
    /// Builds the ruleset for a daemon whose sockets live in `socket_dir` and that logs to
    /// the syslog socket `syslog`, if any.
    pub fn prepare(socket_dir: &Path, syslog: Option<&Path>) -> Result<Landlock, SandboxError> {
        let mut rules = vec![
            (dir("/etc")?, AccessFs::ReadFile),
            (dir("/proc")?, AccessFs::ReadFile),
            (dir(socket_dir)?, AccessFs::RemoveFile),
        ];
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
    pub fn enforce(self) -> Result<(RulesetState, i32), SandboxError> {
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
fn dir(path: impl AsRef<Path>) -> Result<OwnedFd, SandboxError> {
    let path = path.as_ref();
    open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| SandboxError::Path {
        path: path.to_owned(),
        errno,
    })
}

/// The seccomp filter, compiled and not yet installed (`None` on an architecture without
/// an allowlist).
#[derive(Debug)]
pub struct Seccomp(Option<seccompiler::BpfProgram>);

impl Seccomp {
    /// Compiles the allowlist for this architecture.
    pub fn prepare() -> Result<Seccomp, SandboxError> {
        filter::program()
            .map(Seccomp)
            .map_err(|e| SandboxError::Seccomp(e.to_string()))
    }

    /// Installs the filter on every thread of the process.
    pub fn enforce(&self) -> Result<SeccompStatus, SandboxError> {
        match &self.0 {
            None => Ok(SeccompStatus::UnsupportedArch),
            Some(program) => seccompiler::apply_filter_all_threads(program)
                .map(|()| SeccompStatus::KillProcess)
                .map_err(|e| SandboxError::Seccomp(e.to_string())),
        }
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod filter {
    use std::collections::BTreeMap;

    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition,
        SeccompFilter, SeccompRule,
    };

    /// A system call and its alternatives: lists of (argument index, comparison, value)
    /// that must all hold, of which at least one must match (no alternatives: any
    /// arguments). Every argument compared is a C `int`, so the lower 32 bits are compared.
    type Entry = (libc::c_long, Vec<Vec<(u8, Op, u64)>>);

    fn any(nr: libc::c_long) -> Entry {
        (nr, Vec::new())
    }

    /// The allowlist. Every entry is used by the serving process; the comment says by what.
    pub fn allowlist() -> Vec<Entry> {
        let sol_socket = libc::SOL_SOCKET as u64;
        #[allow(unused_mut)] // extended below on x86_64 only
        let mut list = vec![
            // The serve loop: wait (poll also tells whether a peer's pidfd shows it exited),
            // accept, ask the kernel who connected, answer, close.
            any(libc::SYS_ppoll),
            any(libc::SYS_accept4),
            (
                libc::SYS_getsockopt,
                [libc::SO_PEERCRED, libc::SO_PEERGROUPS, libc::SO_PEERPIDFD]
                    .iter()
                    .map(|&opt| vec![(1, Op::Eq, sol_socket), (2, Op::Eq, opt as u64)])
                    .collect(),
            ),
            any(libc::SYS_sendmsg), // grants, denials, sd_notify
            any(libc::SYS_close),
            any(libc::SYS_read), // the signalfd, /proc/PID/comm, /etc/passwd
            // Reading /proc/PID/comm and /etc/passwd, /etc/group: never for writing or
            // creating (Landlock narrows the paths where the kernel has it).
            (
                libc::SYS_openat,
                vec![vec![(
                    2,
                    Op::MaskedEq((libc::O_ACCMODE | libc::O_CREAT | libc::O_TRUNC) as u64),
                    libc::O_RDONLY as u64,
                )]],
            ),
            any(libc::SYS_newfstatat),
            any(libc::SYS_fstat),
            any(libc::SYS_statx),
            any(libc::SYS_lseek),
            // glibc syslog(3): send, and after the syslog daemon restarted, reconnect to
            // /dev/log. Only Unix sockets can be created.
            any(libc::SYS_sendto),
            (
                libc::SYS_socket,
                vec![vec![(0, Op::Eq, libc::AF_UNIX as u64)]],
            ),
            any(libc::SYS_connect),
            any(libc::SYS_getpid), // LOG_PID, and the stderr log's prefix
            // `--log stderr` and panic messages: standard error only.
            (libc::SYS_write, vec![vec![(0, Op::Eq, 2)]]),
            // Memory: the allocator. Never executable memory.
            any(libc::SYS_brk),
            (
                libc::SYS_mmap,
                vec![vec![(2, Op::MaskedEq(libc::PROT_EXEC as u64), 0)]],
            ),
            any(libc::SYS_munmap),
            any(libc::SYS_mremap),
            any(libc::SYS_madvise),
            any(libc::SYS_futex),
            any(libc::SYS_getrandom),     // std's HashMap keys
            any(libc::SYS_clock_gettime), // when the vDSO cannot answer
            // Debug builds of std check that a descriptor is open before closing it.
            (
                libc::SYS_fcntl,
                vec![vec![(1, Op::Eq, libc::F_GETFD as u64)]],
            ),
            // Stop: remove the socket files (Landlock: only in the socket directory).
            (libc::SYS_unlinkat, vec![vec![(2, Op::Eq, 0)]]),
            any(libc::SYS_exit_group),
            any(libc::SYS_exit),
            // Signals: a SIGSTOP/SIGCONT restarts an interrupted poll; std's stack
            // overflow handler; abort() on a panic (SIGABRT to this process only).
            any(libc::SYS_restart_syscall),
            any(libc::SYS_rt_sigreturn),
            any(libc::SYS_rt_sigprocmask),
            any(libc::SYS_sigaltstack),
            any(libc::SYS_gettid),
            (
                libc::SYS_tgkill,
                vec![vec![
                    (0, Op::Eq, u64::from(std::process::id())),
                    (2, Op::Eq, libc::SIGABRT as u64),
                ]],
            ),
        ];
        #[cfg(target_arch = "x86_64")]
        list.extend([
            any(libc::SYS_poll),   // glibc's poll(3) on x86_64 (aarch64 has only ppoll)
            any(libc::SYS_unlink), // std::fs::remove_file on x86_64
        ]);
        list
    }

    #[cfg(target_arch = "x86_64")]
    const ARCH: seccompiler::TargetArch = seccompiler::TargetArch::x86_64;
    #[cfg(target_arch = "aarch64")]
    const ARCH: seccompiler::TargetArch = seccompiler::TargetArch::aarch64;

    /// The compiled filter: the allowlist, and KillProcess for everything else (and for a
    /// system call made with another architecture's calling convention).
    pub fn program() -> Result<Option<BpfProgram>, seccompiler::BackendError> {
        let mut rules = BTreeMap::new();
        for (nr, alternatives) in allowlist() {
            let mut chain = Vec::with_capacity(alternatives.len());
            for conditions in alternatives {
                let conditions = conditions
                    .into_iter()
                    .map(|(arg, op, value)| SeccompCondition::new(arg, Len::Dword, op, value))
                    .collect::<Result<Vec<_>, _>>()?;
                chain.push(SeccompRule::new(conditions)?);
            }
            let previous = rules.insert(nr, chain);
            debug_assert!(previous.is_none(), "system call {nr} listed twice");
        }
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::KillProcess,
            SeccompAction::Allow,
            ARCH,
        )?;
        Ok(Some(filter.try_into()?))
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod filter {
    /// No filter for this architecture: the daemon logs `seccomp=unsupported-arch`.
    pub fn program() -> Result<Option<seccompiler::BpfProgram>, std::convert::Infallible> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn the_allowlist_compiles_for_this_architecture() {
        let program = filter::program()
            .unwrap()
            .expect("a filter on this architecture");
        // The architecture check, one comparison per system call, and the default action.
        assert!(program.len() > filter::allowlist().len() + 3);
    }

    #[test]
    fn the_drop_line_states_what_was_reached() {
        let status = Status {
            seccomp: SeccompStatus::KillProcess,
            landlock: RulesetState::Partial,
            landlock_abi: 7,
        };
        let line = status.audit(crate::audit::Line::new("drop"));
        assert_eq!(
            line.as_str(),
            "event=drop seccomp=kill-process landlock=partial landlock_abi=7"
        );
    }
}
