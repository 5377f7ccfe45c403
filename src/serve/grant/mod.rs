//! Step 8: the serve loop, after the drop, with no privilege left. One thread, poll(2) over the bindings' Unix sockets and a
//! signalfd. For each connection: credentials from the kernel, the access decision, one
//! non-blocking answer, close, one audit line. The daemon never reads from a client, so a
//! client can neither stall it nor feed it input.

pub mod access;
pub mod answer;
pub mod peer;
pub mod ratelimit;
pub mod suppressed;

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::socket::{SockFlag, accept4};

use crate::config::{Binding, ids};
use crate::serve::audit::Line;
use crate::serve::setup::sockdir::Endpoint;
use crate::serve::status::{Counters, Status};
use peer::{Peer, Process};
use ratelimit::{LIMITS, RateLimiter};
use suppressed::{Key, Kind, Report};

/// How long accepting pauses when the daemon is out of descriptors or memory, so that a
/// full table never turns the loop into a busy spin. Waiting clients stay in the backlog.
const PAUSE: Duration = Duration::from_millis(250);
/// The reason sent when the kernel refuses to pass descriptors (ETOOMANYREFS).
const TOO_MANY_IN_FLIGHT: &str = "temporarily unable to pass sockets: too many earlier grants are still unread by their clients; retry shortly";
/// Connections accepted from one socket per wake-up, so one busy binding cannot starve
/// the others or the signals.
const ACCEPT_BATCH: usize = 64;

/// One binding as served: its configuration, its sockets and its Unix endpoint.
pub struct Served<'a> {
    /// The binding.
    pub binding: &'a Binding,
    /// Its bound sockets, in configuration order.
    pub fds: Vec<RawFd>,
    /// Its Unix socket.
    pub endpoint: &'a Endpoint,
}

/// The serve loop's state.
pub struct Server<'a> {
    served: Vec<Served<'a>>,
    signals: &'a SignalFd,
    limiter: RateLimiter,
    paused_until: Option<Instant>,
    status: Option<Status<'a>>,
    /// Grants and denials so far.
    pub counters: Counters,
}

impl<'a> Server<'a> {
    /// A server for `served`, woken by `signals`.
    pub fn new(served: Vec<Served<'a>>, signals: &'a SignalFd) -> Server<'a> {
        Server {
            served,
            signals,
            limiter: RateLimiter::new(LIMITS),
            paused_until: None,
            status: None,
            counters: Counters::default(),
        }
    }

    /// Keeps systemd's STATUS= up to date with the counters (at most every few seconds).
    pub fn report_status(mut self, status: Status<'a>) -> Server<'a> {
        self.status = Some(status);
        self
    }

    /// Serves until SIGTERM or SIGINT, which it returns. Only a failing poll(2) or
    /// signalfd ends it early; nothing a client does can.
    pub fn run(&mut self) -> std::io::Result<Signal> {
        loop {
            let now = Instant::now();
            self.limiter.expire(now);
            self.log_reports();
            if let Some(status) = &mut self.status {
                status.tick(now, self.counters);
            }
            if self.paused_until.is_some_and(|t| t <= now) {
                self.paused_until = None;
            }
            let ready = self.wait(now)?;
            if ready.first() == Some(&true) {
                if let Some(stop) = self.on_signal()? {
                    let reports = self.limiter.drain();
                    log_reports(reports, &self.served);
                    return Ok(stop);
                }
            }
            for (i, _) in ready.iter().skip(1).enumerate().filter(|(_, r)| **r) {
                self.accept_from(i);
            }
        }
    }

    /// Polls; returns readiness of [signalfd, endpoint 0, endpoint 1, …].
    fn wait(&mut self, now: Instant) -> std::io::Result<Vec<bool>> {
        let listen = if self.paused_until.is_some() {
            PollFlags::empty()
        } else {
            PollFlags::POLLIN
        };
        let mut fds = Vec::with_capacity(self.served.len() + 1);
        fds.push(PollFd::new(self.signals.as_fd(), PollFlags::POLLIN));
        fds.extend(
            self.served
                .iter()
                .map(|s| PollFd::new(s.endpoint.listener.as_fd(), listen)),
        );
        let status_due = self.status.as_ref().and_then(|s| s.due(self.counters));
        let deadline = [self.paused_until, self.limiter.next_deadline(), status_due]
            .into_iter()
            .flatten()
            .min();
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(t) => {
                let ms = t
                    .saturating_duration_since(now)
                    .as_millis()
                    .clamp(1, 60_000);
                PollTimeout::from(ms as u16)
            }
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(vec![false; fds.len()]),
            Err(e) => return Err(e.into()),
        }
        Ok(fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect())
    }

    /// Handles one pending signal; `Some` for a stop request.
    fn on_signal(&mut self) -> std::io::Result<Option<Signal>> {
        let Some(info) = self.signals.read_signal()? else {
            return Ok(None);
        };
        match Signal::try_from(info.ssi_signo as i32) {
            Ok(Signal::SIGHUP) => {
                log::info!(
                    "{}",
                    Line::new("reload").field("signal", "SIGHUP").field("result", "ignored").field(
                        "reason",
                        "configuration changes take effect on restart; the sockets survive a restart through the systemd fd store"
                    )
                );
                Ok(None)
            }
            Ok(signal) => Ok(Some(signal)),
            Err(_) => Ok(None),
        }
    }

    fn accept_from(&mut self, index: usize) {
        for _ in 0..ACCEPT_BATCH {
            let listener = &self.served[index].endpoint.listener;
            match accept4(listener, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK) {
                Ok(conn) => self.answer(index, conn),
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR | Errno::ECONNABORTED | Errno::EPROTO) => continue,
                Err(errno) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: stop accepting for a moment.
                    self.paused_until = Some(Instant::now() + PAUSE);
                    let binding = self.served[index].binding.name.clone();
                    self.audit_error(index, None, || {
                        Line::new("error")
                            .field("binding", &binding)
                            .field("op", "accept")
                            .field("error", errno.desc())
                            .field("action", "pausing 250ms; clients wait in the backlog")
                    });
                    return;
                }
            }
        }
    }

    /// Answers one connection and closes it (by dropping `conn`).
    fn answer(&mut self, index: usize, conn: OwnedFd) {
        let served = &self.served[index];
        let binding = served.binding;
        // Supplementary groups are read only when the uid and primary gid do not decide.
        let credentials = Peer::credentials(conn.as_fd()).and_then(|mut peer| {
            if !access::admits_by_ids(binding, &peer) {
                peer.load_groups(conn.as_fd())?;
            }
            Ok(peer)
        });
        let peer = match credentials {
            Ok(peer) => peer,
            Err(e) => {
                let name = binding.name.clone();
                return self.audit_error(index, None, || {
                    Line::new("error")
                        .field("binding", &name)
                        .field("op", "SO_PEERCRED")
                        .field("error", e)
                });
            }
        };
        let decision = access::decide(binding, &peer);
        let kind = if decision.is_ok() {
            Kind::Grant
        } else {
            Kind::Deny
        };
        // Whether this event is logged is known before answering, so the process is pinned
        // (a pidfd, which keeps `comm` from naming a later process) only when it will be.
        let key = Key {
            kind,
            binding: index,
            uid: Some(peer.uid.as_raw()),
        };
        let mut log_it = self.limiter.admit(key, Instant::now());
        log_reports(self.limiter.take_reports(), &self.served);
        let process = log_it.then(|| Process::of(conn.as_fd(), peer.pid));
        let sent = match &decision {
            Ok(()) => answer::send_grant(conn.as_fd(), &served.fds).inspect_err(|&errno| {
                // The kernel refuses to pass more descriptors while too many sent ones sit
                // unread in clients' queues (ETOOMANYREFS): tell this client why.
                if errno == Errno::ETOOMANYREFS {
                    let _ = answer::send_denial(conn.as_fd(), TOO_MANY_IN_FLIGHT);
                }
            }),
            Err(reason) => answer::send_denial(conn.as_fd(), reason),
        };
        drop(conn);
        match decision {
            Ok(()) => self.counters.grants += u64::from(sent.is_ok()),
            Err(_) => self.counters.denials += 1,
        }
        // A failed send is counted under its own kind too, so a flood of grants cannot
        // hide its failures.
        if sent.is_err() && !log_it {
            let key = Key {
                kind: Kind::SendFailed,
                ..key
            };
            log_it = self.limiter.admit(key, Instant::now());
            log_reports(self.limiter.take_reports(), &self.served);
        }
        if !log_it {
            return;
        }
        let comm = process.map(|p| p.comm()).unwrap_or_default();
        let mut line = Line::new(kind.as_str()).field("binding", &binding.name);
        if decision.is_ok() {
            line = line.field("fds", served.fds.len());
        }
        line = line
            .field("pid", peer.pid)
            .field("uid", peer.uid)
            .field("gid", peer.gid)
            .field("user", ids::user_name(peer.uid).as_deref().unwrap_or("-"))
            .field("comm_verified", if comm.verified { "yes" } else { "no" })
            .bytes("comm", comm.name.as_deref().unwrap_or(b"-"));
        if let Err(reason) = &decision {
            line = line.field("reason", reason);
        }
        if let Err(errno) = sent {
            line = line.field("result", "failed").field("error", errno.desc());
        }
        match kind {
            Kind::Grant if sent.is_ok() => log::info!("{line}"),
            _ => log::warn!("{line}"),
        }
    }

    fn audit_error(&mut self, binding: usize, uid: Option<u32>, line: impl FnOnce() -> Line) {
        let key = Key {
            kind: Kind::Error,
            binding,
            uid,
        };
        let log_it = self.limiter.admit(key, Instant::now());
        self.log_reports();
        if log_it {
            log::error!("{}", line());
        }
    }

    /// Logs the counts of the rate-limit windows that have ended.
    fn log_reports(&mut self) {
        let reports = self.limiter.take_reports();
        log_reports(reports, &self.served);
    }
}

/// Logs one `event=suppressed` line per report.
fn log_reports(reports: Vec<Report>, served: &[Served<'_>]) {
    for report in reports {
        let name = served
            .get(report.binding())
            .map_or("-", |s| s.binding.name.as_str());
        log::warn!("{}", report.line(name));
    }
}

/// The raw numbers of `fds`, for sendmsg.
pub fn raw_fds(fds: &[OwnedFd]) -> Vec<RawFd> {
    fds.iter().map(AsRawFd::as_raw_fd).collect()
}
