//! `portbinder serve`: the daemon. [`run`] is the privilege story, top to bottom; each step
//! runs with less than the one before, and docs/PRIVSEP.md says who holds what when.
//!
//! * [`setup`]: the steps that need the start-up privileges, up to and including the drop;
//! * [`sandbox`]: seccomp and Landlock, installed right after the verified drop;
//! * [`grant`]: the serve loop, which runs with no privilege left;
//! * [`audit`], [`logger`], [`notify`], [`status`]: the audit lines, where they go, and what
//!   systemd is told, used on both sides of the drop.

pub mod audit;
pub mod grant;
pub mod logger;
pub mod notify;
pub mod reload;
pub mod sandbox;
pub mod setup;
pub mod status;
mod sys;

use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::{Mode, umask};
use nix::unistd::Uid;

use crate::config::{self, Config, ConfigError, LogTarget, ids};
use audit::Line;
use grant::{Served, Server, raw_fds};
use notify::{Notifier, NotifyError};
use sandbox::SandboxError;
use setup::bind::{self, BindError};
use setup::endpoint::Endpoints;
use setup::fdstore;
use setup::listenfds::{self, ListenFdsError};
use setup::privdrop::{self, DropError, VerifyError};
use setup::record;
use setup::sockdir::{self, SockDirError};
use status::Status;

/// Why `serve` stopped before serving (or while serving).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Start-up set-up failed.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The privilege drop failed.
    #[error(transparent)]
    Drop(#[from] DropError),
    /// The privilege drop could not be verified.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The seccomp filter or the Landlock ruleset could not be installed.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// epoll or the signalfd failed while serving.
    #[error("serve loop failed: {0}")]
    Serve(std::io::Error),
}

/// A start-up step before the drop failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// LISTEN_FDS could not be taken over.
    #[error("cannot take inherited sockets: {0}")]
    ListenFds(#[from] ListenFdsError),
    /// A socket could not be bound or adopted.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The socket directory or a Unix socket failed.
    #[error(transparent)]
    SockDir(#[from] SockDirError),
    /// `$NOTIFY_SOCKET` is set but cannot be connected to.
    #[error(transparent)]
    Notify(#[from] NotifyError),
    /// Signals or the umask could not be set up.
    #[error("cannot {0}: {1}")]
    Process(&'static str, std::io::Error),
    /// Started without root and as another user than the configured one.
    #[error(
        "started as uid {current} without root, but the configuration's user is `{name}` (uid {wanted}): \
         start as root, or as that user with CAP_NET_BIND_SERVICE and CAP_CHOWN"
    )]
    WrongUser {
        /// The uid we run as.
        current: Uid,
        /// The configured user's name.
        name: String,
        /// Its uid.
        wanted: Uid,
    },
}

impl ServeError {
    /// The documented exit code (README, "Exit codes").
    pub fn exit_code(&self) -> i32 {
        match self {
            ServeError::Config(_) => 3,
            ServeError::Setup(_) => 4,
            ServeError::Drop(_) | ServeError::Verify(_) | ServeError::Sandbox(_) => 5,
            ServeError::Serve(_) => 1,
        }
    }
}

/// Runs the daemon: `load` is called after the process is sanitised.
pub fn run(load: impl FnOnce() -> Result<Config, ConfigError>) -> Result<(), ServeError> {
    // 1. Sanitise. The LISTEN_FDS range is taken first, everything above it is closed,
    //    the umask keeps every file private unless created with its final mode, the stop
    //    signals are blocked so a SIGTERM during set-up waits for the loop (and for the
    //    clean-up) instead of killing us half-way.
    logger::install();
    let inherited = listenfds::take().map_err(SetupError::from)?;
    sys::close_fds_from(listenfds::FIRST_FD + inherited.len() as i32)
        .map_err(|e| SetupError::Process("close inherited descriptors", e))?;
    umask(Mode::from_bits_truncate(0o077));
    let fd_limit = raise_fd_limit();
    let signals = block_signals()?;
    // systemd's notification socket, connected now: after the drop only sendmsg is needed.
    let notifier = Notifier::from_env().map_err(SetupError::from)?;

    // 2. Configuration, with every name resolved while NSS is still fully reachable.
    //    `load` reads with config::Trust::RootOr: a file that anyone but root could
    //    have written is refused (exit 3).
    let config = load()?;
    // The start-up working directory (/root, say) is nothing the daemon should hold on to;
    // every path it uses is absolute (main makes --config so).
    std::env::set_current_dir("/").map_err(|e| SetupError::Process("change directory to /", e))?;
    let run_as = config.user.uid;
    if !Uid::effective().is_root() && Uid::effective() != run_as {
        return Err(SetupError::WrongUser {
            current: Uid::effective(),
            name: config.user.name.clone(),
            wanted: run_as,
        }
        .into());
    }

    // 3. The socket directory, opened and locked first: one daemon at a time binds,
    //    recovers and records the sockets of a directory.
    let socket_dir = sockdir::prepare_dir(&config.socket_dir, run_as, config.user_gid)
        .map_err(SetupError::from)?;
    //    Bind (the one step that needs CAP_NET_BIND_SERVICE), adopting inherited sockets,
    //    with each binding's socket options set before bind(2) (SO_MARK and buffers beyond
    //    the sysctl maximum need CAP_NET_ADMIN, which only a root start has). An address in
    //    use gets the socket that processes still hold, a killed daemon's, if the rules of
    //    setup/recover/ allow (pidfd_getfd needs CAP_SYS_PTRACE) and the record of the
    //    sockets portbinder bound names it; a start as root then records its sockets anew.
    let bind::Bound {
        bindings: bound,
        unused,
        recovered,
    } = bind::bind_all(&config.bindings, inherited, &config.origin, &socket_dir)
        .map_err(SetupError::from)?;
    if Uid::effective().is_root() {
        record::write(&socket_dir, recorded_sockets(&config.bindings, &bound))
            .map_err(SetupError::from)?;
    }

    // 4. The Unix sockets (chown needs root or CAP_CHOWN). From here on, `endpoints`
    //    removes the socket files on every way out.
    let mut endpoints = Endpoints::new(&socket_dir);
    for binding in &config.bindings {
        endpoints
            .create(binding, run_as)
            .map_err(SetupError::from)?;
    }

    // 5. Syslog, opened while /dev/log can still be reached whatever the sandbox.
    if config.log == LogTarget::Syslog {
        logger::open_syslog(config.facility);
    }
    // What step 3 recovered from other processes, now that the audit log is open.
    for (level, line) in &recovered {
        log::log!(*level, "{line}");
    }
    // systemd's fd store: what was bound here goes in, what no binding claimed goes out.
    fdstore::sync(&notifier, &config.bindings, &bound, &unused);
    for (inherited, what) in unused {
        log::warn!(
            "{}",
            Line::new("unused-fd")
                .field("fd", inherited.number)
                .field("name", &inherited.name)
                .field("socket", what)
        );
    }

    // The serve loop's epoll instance, created while the sandbox still allows it.
    let events = grant::Events::new()
        .map_err(|e| SetupError::Process("create the serve loop's epoll instance", e))?;

    // 6 and 7. Drop, then prove it. A failure is logged and ends the daemon before it serves.
    let dropped = privdrop::drop_privileges(run_as, config.user_gid)
        .inspect_err(|e| log_failed_drop("failed", e))?;
    privdrop::verify(&dropped).inspect_err(|e| log_failed_drop("unverified", e))?;
    // 7b. Sandbox (src/sandbox.rs): seccomp allowlist and Landlock, stated in the drop line.
    let sandboxed = sandbox::install(socket_dir.fd(), config.log)
        .inspect_err(|e| log_failed_drop("unsandboxed", e))?;
    log_start(&config, &endpoints, &bound, &dropped, &sandboxed);

    // 8. Serve.
    let served = config
        .bindings
        .iter()
        .zip(&endpoints.list)
        .zip(&bound)
        .map(|((binding, endpoint), sockets)| Served {
            binding,
            fds: raw_fds(&sockets.fds),
            endpoint,
        })
        .collect();
    let mut server = Server::new(served, &signals, events, fd_limit)
        .map_err(ServeError::Serve)?
        .report_status(Status::new(&notifier, config.bindings.len()));
    log::info!(
        "{}",
        Line::new("ready").field("bindings", config.bindings.len())
    );
    notifier.ready(&status::status_text(
        config.bindings.len(),
        status::Counters::default(),
    ));
    let signal = server.run().map_err(ServeError::Serve)?;
    notifier.stopping(&status::stopping_text(signal.as_str(), server.counters));
    log::info!(
        "{}",
        Line::new("stop")
            .field("signal", signal.as_str())
            .field("grants", server.counters.grants)
            .field("denials", server.counters.denials)
    );
    drop(endpoints);
    Ok(())
}

/// Every socket of every binding, as the record of the sockets bound lists them.
fn recorded_sockets<'a>(
    bindings: &'a [config::Binding],
    bound: &'a [bind::BoundSockets],
) -> impl Iterator<Item = (&'a str, &'a config::address::ListenAddr, BorrowedFd<'a>)> {
    bindings.iter().zip(bound).flat_map(|(binding, sockets)| {
        binding
            .listen
            .iter()
            .zip(&sockets.fds)
            .map(|(addr, fd)| (binding.name.as_str(), addr, fd.as_fd()))
    })
}

/// Logs why the daemon stops before serving: the error and its causes, on one line.
fn log_failed_drop(result: &str, error: &dyn std::error::Error) {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text = format!("{text}: {e}");
        cause = e.source();
    }
    log::error!(
        "{}",
        Line::new("drop")
            .field("result", result)
            .field("error", text)
    );
}

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns the soft limit then in force.
/// Besides room for connections, the kernel caps the descriptors a sender has in flight
/// (sent, not yet received) at this limit, so a client that never reads its grants exhausts
/// a larger budget; the serve loop shares it out between the bindings (grant/unread.rs).
fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

fn block_signals() -> Result<SignalFd, SetupError> {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(signal);
    }
    set.thread_block()
        .map_err(|e| SetupError::Process("block signals", e.into()))?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| SetupError::Process("create a signalfd", e.into()))
}

fn log_start(
    config: &Config,
    endpoints: &Endpoints<'_>,
    bound: &[bind::BoundSockets],
    dropped: &privdrop::Dropped,
    sandboxed: &sandbox::Status,
) {
    for ((binding, endpoint), sockets) in config.bindings.iter().zip(&endpoints.list).zip(bound) {
        let listen: Vec<String> = binding.listen.iter().map(ToString::to_string).collect();
        let line = Line::new("start")
            .field("binding", &binding.name)
            .field("listen", listen.join(","))
            .field("socket", endpoint.path.display())
            .field(
                "owner",
                ids::user_name(config.user.uid).unwrap_or_else(|| config.user.uid.to_string()),
            )
            .field("group", &binding.group.name)
            .field("mode", format_args!("{:04o}", binding.mode))
            .field("adopted", sockets.adopted)
            .field("recovered", sockets.recovered);
        // The socket options: nonblocking always, every other one the binding sets.
        let line = binding
            .options
            .audit_fields()
            .into_iter()
            .fold(line, |line, (key, value)| line.field(key, value));
        log::info!("{line}");
    }
    let line = Line::new("drop")
        .field("result", "verified")
        .field("uid", dropped.uid)
        .field("gid", dropped.gid)
        .field("groups", group_list(&dropped.groups))
        .field(
            "caps",
            if dropped.bounding_cleared {
                "none"
            } else {
                "none-bounding-kept"
            },
        )
        .field("no_new_privs", 1);
    log::info!("{}", sandboxed.audit(line));
}

/// `none`, or the kept supplementary gids joined by commas.
fn group_list(groups: &[nix::unistd::Gid]) -> String {
    if groups.is_empty() {
        return "none".to_owned();
    }
    groups
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
