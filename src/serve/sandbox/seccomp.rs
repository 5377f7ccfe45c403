//! The seccomp half of the sandbox (x86_64 and aarch64): an allowlist of the system calls
//! the serve loop, glibc's syslog (including its reconnect after the syslog daemon
//! restarts), the local-files name lookups, the sd_notify socket, a reload and the clean
//! stop need, several of them narrowed by argument. Anything else kills the process (SECURITY.md says
//! why kill and not EPERM). Installed with TSYNC, so it covers every thread (there is one).
//! On other architectures the daemon runs without it and says so in the `event=drop` line.

use std::fmt;

/// The seccomp filter could not be built or installed.
#[derive(Debug, thiserror::Error)]
#[error("cannot install the seccomp filter: {0}")]
pub struct SeccompError(String);

/// Whether the seccomp filter is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeccompStatus {
    /// Installed on every thread; a system call outside the allowlist kills the process.
    KillProcess,
    /// No allowlist exists for this architecture.
    UnsupportedArch,
}

impl fmt::Display for SeccompStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SeccompStatus::KillProcess => "kill-process",
            SeccompStatus::UnsupportedArch => "unsupported-arch",
        })
    }
}

/// The seccomp filter, compiled and not yet installed (`None` on an architecture without
/// an allowlist).
#[derive(Debug)]
pub struct Seccomp(Option<seccompiler::BpfProgram>);

impl Seccomp {
    /// Compiles the allowlist for this architecture.
    pub fn prepare() -> Result<Seccomp, SeccompError> {
        filter::program()
            .map(Seccomp)
            .map_err(|e| SeccompError(e.to_string()))
    }

    /// Installs the filter on every thread of the process.
    pub fn enforce(&self) -> Result<SeccompStatus, SeccompError> {
        match &self.0 {
            None => Ok(SeccompStatus::UnsupportedArch),
            Some(program) => seccompiler::apply_filter_all_threads(program)
                .map(|()| SeccompStatus::KillProcess)
                .map_err(|e| SeccompError(e.to_string())),
        }
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(super) mod filter {
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

    /// Each (level, option) pair as one alternative for getsockopt or setsockopt.
    fn options(pairs: &[(libc::c_int, &[libc::c_int])]) -> Vec<Vec<(u8, Op, u64)>> {
        pairs
            .iter()
            .flat_map(|&(level, names)| {
                names
                    .iter()
                    .map(move |&name| vec![(1, Op::Eq, level as u64), (2, Op::Eq, name as u64)])
            })
            .collect()
    }

    /// The allowlist. Every entry is used by the serving process; the comment says by what.
    pub fn allowlist() -> Vec<Entry> {
        use libc::{IPPROTO_IP, IPPROTO_IPV6, IPPROTO_TCP, SOL_SOCKET};
        // What a reload sets on a bound socket (src/serve/options/ with an inherited
        // socket's rules): SO_REUSEADDR, IP_FREEBIND, keepalive, buffers, the TCP options.
        // SO_MARK, SO_BINDTODEVICE and the FORCE buffers are set only when the socket's value
        // differs (a privileged holder changed it): without the capabilities the drop took
        // the kernel answers EPERM and the reload is refused with the reason, rather than
        // the process killed.
        let set_on_bound_sockets: [(libc::c_int, &[libc::c_int]); 3] = [
            (
                SOL_SOCKET,
                &[
                    libc::SO_REUSEADDR,
                    libc::SO_KEEPALIVE,
                    libc::SO_RCVBUF,
                    libc::SO_SNDBUF,
                    libc::SO_RCVBUFFORCE,
                    libc::SO_SNDBUFFORCE,
                    libc::SO_MARK,
                    libc::SO_BINDTODEVICE,
                ],
            ),
            (IPPROTO_IP, &[libc::IP_FREEBIND]),
            (
                IPPROTO_TCP,
                &[
                    libc::TCP_DEFER_ACCEPT,
                    libc::TCP_FASTOPEN,
                    libc::TCP_KEEPIDLE,
                    libc::TCP_KEEPINTVL,
                    libc::TCP_KEEPCNT,
                ],
            ),
        ];
        // The peer's credentials (every connection), and what a reload reads back: the
        // options it checks or sets only when they differ, the snapshot it puts back when a
        // step fails (src/serve/options/snapshot.rs), and the buffer maximum a scratch Unix
        // socket is granted.
        let read: [(libc::c_int, &[libc::c_int]); 4] = [
            (
                SOL_SOCKET,
                &[
                    libc::SO_PEERCRED,
                    libc::SO_PEERGROUPS,
                    libc::SO_PEERPIDFD,
                    libc::SO_RCVBUF,
                    libc::SO_SNDBUF,
                    libc::SO_MARK,
                    libc::SO_BINDTODEVICE,
                    libc::SO_REUSEADDR,
                    libc::SO_KEEPALIVE,
                ],
            ),
            (IPPROTO_IP, &[libc::IP_FREEBIND]),
            (IPPROTO_IPV6, &[libc::IPV6_V6ONLY]),
            (IPPROTO_TCP, &[libc::TCP_DEFER_ACCEPT, libc::TCP_FASTOPEN]),
        ];
        #[allow(unused_mut)] // extended below on x86_64 only
        let mut list = vec![
            // The serve loop: wait on its epoll instance (created before the sandbox: no
            // epoll_create), register a binding's socket or a grant left unread (ADD), pause
            // and resume a binding's socket (MOD; closing unregisters, so no DEL), accept, ask
            // the kernel who connected, answer, see whether a grant has been read (SIOCOUTQ,
            // and poll for peers that closed; poll also tells whether a peer's pidfd shows it
            // exited), close.
            any(libc::SYS_epoll_pwait),
            (
                libc::SYS_epoll_ctl,
                [libc::EPOLL_CTL_ADD, libc::EPOLL_CTL_MOD]
                    .iter()
                    .map(|&op| vec![(1, Op::Eq, op as u64)])
                    .collect(),
            ),
            (libc::SYS_ioctl, vec![vec![(1, Op::Eq, libc::TIOCOUTQ)]]),
            any(libc::SYS_ppoll),
            any(libc::SYS_accept4),
            (libc::SYS_getsockopt, options(&read)),
            any(libc::SYS_sendmsg), // grants, denials, sd_notify
            // The end of a grant's answer, while the daemon keeps the connection.
            (
                libc::SYS_shutdown,
                vec![vec![(1, Op::Eq, libc::SHUT_WR as u64)]],
            ),
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
            // /dev/log; a reload's scratch socket. Only Unix sockets can be created.
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
            // Debug builds of std check that a descriptor is open before closing it (F_GETFD);
            // a reload reads and sets O_NONBLOCK on the shared sockets, and no other flag.
            (
                libc::SYS_fcntl,
                vec![
                    vec![(1, Op::Eq, libc::F_GETFD as u64)],
                    vec![(1, Op::Eq, libc::F_GETFL as u64)],
                    vec![
                        (1, Op::Eq, libc::F_SETFL as u64),
                        (
                            2,
                            Op::MaskedEq(u64::from(!((libc::O_NONBLOCK | libc::O_ACCMODE) as u32))),
                            0,
                        ),
                    ],
                ],
            ),
            // A reload: the trust check of the file reads its real path from /proc/self/fd;
            // a socket file's mode is changed through its /proc/self/fd link, relative to
            // the working directory and to permission bits only (no setuid, setgid, sticky);
            // a new backlog is listen(2) again; socket options as above.
            any(libc::SYS_readlinkat),
            (
                libc::SYS_fchmodat,
                vec![vec![
                    (0, Op::Eq, u64::from(libc::AT_FDCWD as u32)),
                    (2, Op::MaskedEq(u64::from(!0o777u32)), 0),
                ]],
            ),
            any(libc::SYS_listen),
            (libc::SYS_setsockopt, options(&set_on_bound_sockets)),
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
            any(libc::SYS_poll),       // glibc's poll(3) on x86_64 (aarch64 has only ppoll)
            any(libc::SYS_epoll_wait), // glibc's epoll_wait(3) on x86_64 (aarch64: epoll_pwait)
            any(libc::SYS_unlink),     // std::fs::remove_file on x86_64
            any(libc::SYS_readlink),   // std::fs::read_link on x86_64 (a reload's trust check)
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
pub(super) mod filter {
    /// No filter for this architecture: the daemon logs `seccomp=unsupported-arch`.
    pub fn program() -> Result<Option<seccompiler::BpfProgram>, std::convert::Infallible> {
        Ok(None)
    }
}
