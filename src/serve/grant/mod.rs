//! Step 8: the serve loop, after the drop, with no privilege left. One thread and one epoll
//! instance on which the signalfd and every binding's Unix socket are registered once, so a
//! grant costs the same with one binding or a thousand. Each wake-up handles a pending signal
//! first, then up to [`ACCEPT_BATCH`] connections per ready binding (a binding with more is
//! served again after the others), then the unread grants; it sleeps until the next event or
//! deadline (status, rate-limit report, end of a pause, a check of fresh grants) and never
//! spins.
//!
//! * [`events`]: the epoll instance and what woke the loop;
//! * [`served`]: the bindings served, owned for the daemon's lifetime;
//! * [`connection`]: one connection from accept to audit line;
//! * [`access`], [`answer`], [`peer`]: the decision, the protocol, who is asking;
//! * [`unread`]: grants not read yet, and their caps;
//! * [`ratelimit`], [`suppressed`]: the bounds on audit lines, and the counts of what they
//!   held back.
//!
//! SIGHUP hands the bindings to src/serve/reload/, which changes them in place or removes
//! some; a removed binding keeps its index, without an endpoint.

pub mod answer;
pub mod connection;
pub mod events;
pub mod peer;
pub mod ratelimit;
pub mod served;
pub mod suppressed;
pub mod unread;

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::socket::{SockFlag, accept4};

pub use events::Events;
pub use served::Served;

use crate::serve::audit::Line;
use crate::serve::reload::Reloader;
use crate::serve::setup::endpoint::Endpoints;
use crate::serve::status::{Counters, Status};
use connection::Books;
use events::Token;
use ratelimit::{LIMITS, RateLimiter};
use unread::Unread;

/// How long accepting pauses when the daemon is out of descriptors or memory, so that a
/// full table never turns the loop into a busy spin. Waiting clients stay in the backlog.
const PAUSE: Duration = Duration::from_millis(250);
/// Connections accepted from one socket per wake-up, so one busy binding cannot starve
/// the others or the signals.
const ACCEPT_BATCH: usize = 64;
/// A wait that lasted this long slept until something arrived (one that found events ready
/// returns in a few microseconds).
const SLEPT: Duration = Duration::from_micros(20);

/// The serve loop's state.
pub struct Server<'a> {
    served: Vec<Served>,
    endpoints: Endpoints<'a>,
    signals: &'a SignalFd,
    events: Events,
    limiter: RateLimiter,
    unread: Unread,
    paused_until: Option<Instant>,
    /// Bindings whose socket was reported ready during a pause: not watched until it ends.
    paused: Vec<usize>,
    status: Option<Status<'a>>,
    reloader: Option<Reloader<'a>>,
    /// Grants and denials so far.
    pub counters: Counters,
}

impl<'a> Server<'a> {
    /// A server for `served` and their `endpoints` (by the same index), woken through
    /// `events` (created before the sandbox) by `signals` and the bindings' Unix sockets;
    /// `fd_limit` is the soft RLIMIT_NOFILE, which also bounds the sockets of unread grants,
    /// and `fds_open` the descriptors open when serving starts. Dropping it closes them and
    /// removes the socket files.
    pub fn new(
        served: Vec<Served>,
        endpoints: Endpoints<'a>,
        signals: &'a SignalFd,
        events: Events,
        fd_limit: u64,
        fds_open: u64,
    ) -> std::io::Result<Server<'a>> {
        events.watch_signals(signals.as_fd())?;
        for index in 0..served.len() {
            if let Some(endpoint) = endpoints.get(index) {
                events.watch_listener(endpoint.listener.as_fd(), index)?;
            }
        }
        let fds: Vec<usize> = served.iter().map(|s| s.fds.len()).collect();
        Ok(Server {
            unread: Unread::new(&fds, fd_limit, fds_open),
            served,
            endpoints,
            signals,
            events,
            limiter: RateLimiter::new(LIMITS),
            paused_until: None,
            paused: Vec::new(),
            status: None,
            reloader: None,
            counters: Counters::default(),
        })
    }

    /// Reloads on SIGHUP with `reloader` (without one, SIGHUP is logged as unchanged).
    pub fn reload_with(mut self, reloader: Reloader<'a>) -> Server<'a> {
        self.reloader = Some(reloader);
        self
    }

    /// Keeps systemd's STATUS= up to date with the counters (at most every few seconds).
    pub fn report_status(mut self, status: Status<'a>) -> Server<'a> {
        self.status = Some(status);
        self
    }

    /// Serves until SIGTERM or SIGINT, which it returns. Only a failing epoll or signalfd
    /// ends it early; nothing a client does can.
    pub fn run(&mut self) -> std::io::Result<Signal> {
        let mut ready = 0;
        loop {
            let timeout = self.housekeeping(Instant::now(), ready == 0);
            let waited = Instant::now();
            ready = match self.events.wait(timeout) {
                Ok(ready) => ready,
                Err(e) => {
                    // The loop ends: what the rate limiter held back is still reported.
                    connection::log_reports(self.limiter.drain(), &self.served);
                    return Err(e.into());
                }
            };
            if self.events.signalled() {
                if let Some(stop) = self.on_signal()? {
                    connection::log_reports(self.limiter.drain(), &self.served);
                    return Ok(stop);
                }
            }
            let now = Instant::now();
            // A wait that slept was woken by what just arrived, most likely one connection:
            // accepting one saves the accept4 that would find the queue empty. If more came,
            // the next wait returns at once (the listener is level-triggered), and then the
            // batch takes them all.
            let batch = if now.duration_since(waited) >= SLEPT {
                1
            } else {
                ACCEPT_BATCH
            };
            for i in 0..ready {
                match self.events.token(i) {
                    Token::Signals => {}
                    Token::Listener(index) if self.paused_until.is_some() => {
                        self.set_accepting(index, false);
                        self.paused.push(index);
                    }
                    Token::Listener(index) => self.accept_from(index, now, batch),
                    Token::Held(slot) => self.unread.on_event(slot),
                }
            }
        }
    }

    /// Does what is due at `now` (the check of fresh grants, closing read ones, rate-limit
    /// counts, systemd status, the end of a pause) and returns how long the next wait may
    /// last. `idle`: the last wait ended with nothing ready, so no client is waiting.
    fn housekeeping(&mut self, now: Instant, idle: bool) -> Option<Duration> {
        self.unread.check_due(now, &self.events);
        self.unread.close_some(idle);
        self.limiter.expire(now);
        connection::log_reports(self.limiter.take_reports(), &self.served);
        if let Some(status) = &mut self.status {
            status.tick(now, self.counters);
        }
        if self.paused_until.is_some_and(|t| t <= now) {
            self.paused_until = None;
            for index in std::mem::take(&mut self.paused) {
                self.set_accepting(index, true);
            }
        }
        let status_due = self.status.as_ref().and_then(|s| s.due(self.counters));
        [
            self.paused_until,
            self.limiter.next_deadline(),
            status_due,
            self.unread.deadline(now),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|t| t.saturating_duration_since(now))
    }

    fn set_accepting(&self, index: usize, accepting: bool) {
        // A binding a reload removed has no listener left to watch.
        let Some(endpoint) = self.endpoints.get(index) else {
            return;
        };
        // Fails only for a descriptor that is not registered, which cannot happen here.
        let _ = self
            .events
            .set_accepting(endpoint.listener.as_fd(), index, accepting);
    }

    /// Handles one pending signal; `Some` for a stop request.
    fn on_signal(&mut self) -> std::io::Result<Option<Signal>> {
        let Some(info) = self.signals.read_signal()? else {
            return Ok(None);
        };
        match Signal::try_from(info.ssi_signo as i32) {
            Ok(Signal::SIGHUP) => {
                self.reload();
                Ok(None)
            }
            Ok(signal) => Ok(Some(signal)),
            Err(_) => Ok(None),
        }
    }

    /// SIGHUP: the configuration read again and applied, or refused (src/serve/reload/).
    fn reload(&mut self) {
        let Some(reloader) = &mut self.reloader else {
            log::info!(
                "{}",
                Line::new("reload")
                    .field("signal", "SIGHUP")
                    .field("result", "unchanged")
            );
            return;
        };
        let outcome = reloader.reload(&mut self.served, &mut self.endpoints, self.counters);
        if let Some(status) = &mut self.status {
            let bindings = reloader.bindings();
            status.reloaded(Instant::now(), bindings, self.counters, outcome.refused());
        }
    }

    /// Accepts and answers up to `batch` connections waiting on binding `index`.
    fn accept_from(&mut self, index: usize, now: Instant, batch: usize) {
        for _ in 0..batch {
            // The listener of a binding removed by a reload in this wake-up is gone.
            let Some(endpoint) = self.endpoints.get(index) else {
                return;
            };
            let listener = &endpoint.listener;
            match accept4(listener, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK) {
                Ok(conn) => {
                    let mut books = Books {
                        limiter: &mut self.limiter,
                        unread: &mut self.unread,
                        counters: &mut self.counters,
                        events: &mut self.events,
                    };
                    connection::answer(&self.served, index, conn, &mut books, now);
                }
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR | Errno::ECONNABORTED | Errno::EPROTO) => continue,
                Err(errno) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: stop accepting for a moment.
                    self.paused_until = Some(now + PAUSE);
                    self.set_accepting(index, false);
                    self.paused.push(index);
                    let name = &self.served[index].binding.name;
                    connection::audit_error(&self.served, index, &mut self.limiter, now, || {
                        Line::new("error")
                            .field("binding", name)
                            .field("op", "accept")
                            .field("error", errno.desc())
                            .field("action", "pausing 250ms; clients wait in the backlog")
                    });
                    return;
                }
            }
        }
    }
}
