//! `portbinder serve`: the daemon. [`run`] is the privilege story, top to bottom; each step
//! runs with less than the one before, and docs/PRIVSEP.md says who holds what when.
//!
//! * [`setup`]: the steps that need the start-up privileges, up to and including the drop;
//! * [`sandbox`]: seccomp and Landlock, installed right after the verified drop;
//! * [`grant`]: the serve loop, which runs with no privilege left;
//! * [`reload`]: SIGHUP, the configuration read again and applied as far as no privilege is
//!   needed;
//! * [`access`]: who may fetch a binding, decided the same way in the serve loop and by
//!   recovery;
//! * [`audit`], [`logger`], [`notify`], [`status`]: the audit lines, where they go, and what
//!   systemd is told, [`fdstore`], what its fd store holds, [`options`], the socket
//!   options, and [`procfs`], what /proc says of a process, used on both sides of the drop;
//! * [`error`]: why the daemon stopped, and the exit code of each cause.

pub mod access;
pub mod audit;
pub mod error;
pub mod fdstore;
pub mod grant;
pub mod logger;
pub mod notify;
pub mod options;
pub mod procfs;
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

use crate::config::{self, Config, ConfigError, LogTarget, Origin, ids};
use audit::Line;
use grant::{Served, Server};
use notify::Notifier;
use reload::Reloader;
use setup::bind;
use setup::endpoint::Endpoints;
use setup::listenfds;
use setup::privdrop;
use setup::record;
use setup::sockdir;
use status::Status;

pub use error::{ServeError, SetupError};

/// Runs the daemon: `load` is called after the process is sanitised, and again on every
/// SIGHUP (src/serve/reload/), then as the run user inside the sandbox.
pub fn run(load: impl Fn() -> Result<Config, ConfigError>) -> Result<(), ServeError> {
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
    // The file's directory, opened now by its real path (the run user may not even reach it),
    // for the sandbox rule that lets a reload read the file again.
    let config_dir = match &config.origin {
        Origin::File(path) => sandbox::config_dir(path),
        Origin::Flags => None,
    };
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
    //    A record that cannot be written is a warning (logged below), not a failed start.
    let unrecorded = Uid::effective()
        .is_root()
        .then(|| record::write(&socket_dir, recorded_sockets(&config.bindings, &bound)))
        .flatten();

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
    if let Some(line) = unrecorded {
        log::warn!("{line}");
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

    // What is open now stays open while serving (the unread-grant caps leave room for it).
    let fds_open =
        open_descriptors().unwrap_or_else(|| u64::try_from(events.raw_fd()).unwrap_or(0) + 1);

    // 6 and 7. Drop, then prove it. A failure is logged and ends the daemon before it serves.
    let dropped = privdrop::drop_privileges(run_as, config.user_gid)
        .inspect_err(|e| log_failed_drop("failed", e))?;
    privdrop::verify(&dropped).inspect_err(|e| log_failed_drop("unverified", e))?;
    // 7b. Sandbox (src/serve/sandbox/): seccomp allowlist and Landlock, stated in the drop line.
    let sandboxed = sandbox::install(socket_dir.fd(), config.log, config_dir.as_ref())
        .inspect_err(|e| log_failed_drop("unsandboxed", e))?;
    // The rule holds the directory now; the descriptor is not needed any more.
    drop(config_dir);
    log_start(&config, &endpoints, &bound, &dropped, &sandboxed);

    // 8. Serve. The serve loop owns the bindings, their sockets and endpoints from here on
    //    (a reload changes or removes them); dropping it removes the socket files.
    let bindings = config.bindings.len();
    let served = config
        .bindings
        .iter()
        .zip(bound)
        .map(|(binding, sockets)| Served::new(binding.clone(), sockets.fds))
        .collect();
    let mut server = Server::new(served, endpoints, &signals, events, fd_limit, fds_open)
        .map_err(ServeError::Serve)?
        .report_status(Status::new(&notifier, bindings))
        .reload_with(Reloader::new(&load, config, &notifier));
    log::info!("{}", Line::new("ready").field("bindings", bindings));
    notifier.ready(&status::status_text(bindings, status::Counters::default()));
    let signal = server.run().map_err(ServeError::Serve)?;
    notifier.stopping(&status::stopping_text(signal.as_str(), server.counters));
    log::info!(
        "{}",
        Line::new("stop")
            .field("signal", signal.as_str())
            .field("grants", server.counters.grants)
            .field("denials", server.counters.denials)
    );
    drop(server);
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

/// How many descriptors this process has open (/proc/self/fd, less the one reading it);
/// `None` without /proc. Read before the sandbox, which forbids listing directories.
fn open_descriptors() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(entries.saturating_sub(1))
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
    for (index, (binding, sockets)) in config.bindings.iter().zip(bound).enumerate() {
        let Some(endpoint) = endpoints.get(index) else {
            continue;
        };
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
        let line = options::audit_fields(&binding.options)
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
