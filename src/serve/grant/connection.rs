//! One accepted connection, from the kernel's credentials to the audit line: the access
//! decision, the caps on unread grants, one non-blocking answer, and the line (when the rate
//! limiter lets it through). A grant's connection is shut down for writing (the client sees
//! the end of the stream) and handed to [`Unread`] until its answer has been read; every
//! other connection is closed at once. The daemon never reads from a
//! client, so a client can neither stall it nor feed it input.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::socket::{Shutdown, shutdown};

use crate::config::ids;
use crate::serve::access;
use crate::serve::audit::Line;
use crate::serve::grant::answer;
use crate::serve::grant::events::Events;
use crate::serve::grant::peer::{Peer, Process};
use crate::serve::grant::ratelimit::RateLimiter;
use crate::serve::grant::served::Served;
use crate::serve::grant::suppressed::{Key, Kind, Report};
use crate::serve::grant::unread::Unread;
use crate::serve::status::Counters;

/// The reason sent when the kernel refuses to pass descriptors (ETOOMANYREFS).
const TOO_MANY_IN_FLIGHT: &str = "temporarily unable to pass sockets: too many earlier grants are still unread by their clients; retry shortly";

/// What answering a connection updates.
pub struct Books<'b> {
    /// The audit rate limiter.
    pub limiter: &'b mut RateLimiter,
    /// The unread grants.
    pub unread: &'b mut Unread,
    /// Grants and denials so far.
    pub counters: &'b mut Counters,
    /// The loop's epoll instance (for connections left unread).
    pub events: &'b mut Events,
}

/// Answers `conn`, accepted on the Unix socket of `served[index]`, at `now`.
pub fn answer(served: &[Served], index: usize, conn: OwnedFd, books: &mut Books<'_>, now: Instant) {
    let this = &served[index];
    let binding = &this.binding;
    // Supplementary groups are read only when the uid and primary gid do not decide.
    let credentials = Peer::credentials(conn.as_fd()).and_then(|mut peer| {
        if !access::admits_by_ids(binding, peer.uid, peer.gid) {
            peer.load_groups(conn.as_fd())?;
        }
        Ok(peer)
    });
    let peer = match credentials {
        Ok(peer) => peer,
        Err(e) => {
            return audit_error(served, index, books.limiter, now, || {
                Line::new("error")
                    .field("binding", &binding.name)
                    .field("op", "SO_PEERCRED")
                    .field("error", e)
            });
        }
    };
    let uid = peer.uid.as_raw();
    let decision = access::decide(binding, peer.uid, peer.gid, &peer.groups)
        .and_then(|()| books.unread.admit(index, uid, &binding.name, books.events));
    let kind = if decision.is_ok() {
        Kind::Grant
    } else {
        Kind::Deny
    };
    let key = Key {
        kind,
        binding: index,
        uid: Some(uid),
    };
    let mut log_it = books.limiter.admit(key, now);
    log_reports(books.limiter.take_reports(), served);
    // Whether the event is logged is known before answering, so the process is named while
    // it waits for its answer, pinned by a pidfd so that the name is its own; the name is
    // read only for a line that will be written.
    let comm = log_it.then(|| Process::of(conn.as_fd(), peer.pid).comm());
    let sent = match &decision {
        Ok(()) => answer::send_grant(conn.as_fd(), &this.fds).inspect_err(|&errno| {
            // The kernel refuses to pass more descriptors while too many sent ones sit
            // unread in clients' queues (ETOOMANYREFS): tell this client why.
            if errno == Errno::ETOOMANYREFS {
                let _ = answer::send_denial(conn.as_fd(), TOO_MANY_IN_FLIGHT);
            }
        }),
        Err(reason) => answer::send_denial(conn.as_fd(), reason),
    };
    match (&decision, sent) {
        (Ok(()), Ok(())) => {
            books.counters.grants += 1;
            // The client sees the end of the answer now, as if the daemon had closed; the
            // daemon keeps its end until the grant has been read.
            let _ = shutdown(conn.as_raw_fd(), Shutdown::Write);
            books.unread.hold(conn, index, uid, now, books.events);
        }
        (Ok(()), Err(_)) => drop(conn),
        (Err(_), _) => {
            books.counters.denials += 1;
            drop(conn);
        }
    }
    // A failed send is counted under its own kind too, so a flood of grants cannot hide
    // its failures.
    if sent.is_err() && !log_it {
        let key = Key {
            kind: Kind::SendFailed,
            ..key
        };
        log_it = books.limiter.admit(key, now);
        log_reports(books.limiter.take_reports(), served);
    }
    if !log_it {
        return;
    }
    let comm = comm.unwrap_or_default();
    let mut line = Line::new(kind.as_str()).field("binding", &binding.name);
    if decision.is_ok() {
        line = line.field("fds", this.fds.len());
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
    if decision.is_ok() && sent.is_ok() {
        log::info!("{line}");
    } else {
        log::warn!("{line}");
    }
}

/// Logs an error of binding `served[index]` unless the rate limiter holds it back.
pub fn audit_error(
    served: &[Served],
    index: usize,
    limiter: &mut RateLimiter,
    now: Instant,
    line: impl FnOnce() -> Line,
) {
    let key = Key {
        kind: Kind::Error,
        binding: index,
        uid: None,
    };
    let log_it = limiter.admit(key, now);
    log_reports(limiter.take_reports(), served);
    if log_it {
        log::error!("{}", line());
    }
}

/// Logs one `event=suppressed` line per report.
pub fn log_reports(reports: Vec<Report>, served: &[Served]) {
    for report in reports {
        let name = served
            .get(report.binding())
            .map_or("-", |s| s.binding.name.as_str());
        log::warn!("{}", report.line(name));
    }
}
