//! What wakes the serve loop: one epoll instance, created before the sandbox, on which every
//! descriptor is registered once, so that a wake-up costs the same whatever the number of
//! bindings. Registered are the signalfd, each binding's Unix socket (level-triggered: a
//! socket with connections left after a batch is reported again at the next wait, after the
//! others), and the rare granted connection whose answer was still unread when first
//! checked (edge-triggered, woken when the answer is read or the peer closes).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

/// Events returned by one wait at most; more ready descriptors are returned by the next
/// waits (epoll hands out level-triggered ones round-robin).
const MAX_EVENTS: usize = 256;
const SIGNALS: u64 = u64::MAX;
const HELD: u64 = 1 << 62;

/// What a ready descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// The signalfd.
    Signals,
    /// The Unix socket of the binding with this index.
    Listener(usize),
    /// A held connection, by its slot (see `unread`).
    Held(usize),
}

impl Token {
    fn data(self) -> u64 {
        match self {
            Token::Signals => SIGNALS,
            Token::Listener(index) => index as u64,
            Token::Held(slot) => HELD | slot as u64,
        }
    }

    fn of(data: u64) -> Token {
        match data {
            SIGNALS => Token::Signals,
            d if d & HELD != 0 => Token::Held((d & !HELD) as usize),
            d => Token::Listener(d as usize),
        }
    }
}

/// The epoll instance and the events of the last wait.
#[derive(Debug)]
pub struct Events {
    epoll: Epoll,
    ready: Vec<EpollEvent>,
    count: usize,
    /// For [`Events::held_ready_now`], so that it leaves the last wait's events alone.
    now: Vec<EpollEvent>,
}

impl Events {
    /// Creates the epoll instance (before the sandbox: `epoll_create1` is not allowed after).
    pub fn new() -> std::io::Result<Events> {
        Ok(Events {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            ready: vec![EpollEvent::empty(); MAX_EVENTS],
            count: 0,
            now: vec![EpollEvent::empty(); MAX_EVENTS],
        })
    }

    /// The epoll descriptor's number: the newest descriptor of the start-up, so about the
    /// number of descriptors the daemon holds before it serves.
    pub fn raw_fd(&self) -> RawFd {
        self.epoll.0.as_raw_fd()
    }

    /// Registers the signalfd.
    pub fn watch_signals(&self, signals: BorrowedFd<'_>) -> nix::Result<()> {
        let event = EpollEvent::new(EpollFlags::EPOLLIN, Token::Signals.data());
        self.epoll.add(signals, event)
    }

    /// Registers binding `index`'s Unix socket, level-triggered.
    pub fn watch_listener(&self, listener: BorrowedFd<'_>, index: usize) -> nix::Result<()> {
        let event = EpollEvent::new(EpollFlags::EPOLLIN, Token::Listener(index).data());
        self.epoll.add(listener, event)
    }

    /// Stops (`accepting == false`) or resumes reporting binding `index`'s connections,
    /// for the pause after the daemon runs out of descriptors or memory.
    pub fn set_accepting(
        &self,
        listener: BorrowedFd<'_>,
        index: usize,
        accepting: bool,
    ) -> nix::Result<()> {
        let flags = if accepting {
            EpollFlags::EPOLLIN
        } else {
            EpollFlags::empty()
        };
        let mut event = EpollEvent::new(flags, Token::Listener(index).data());
        self.epoll.modify(listener, &mut event)
    }

    /// Registers a held connection, edge-triggered: reported once now (it is writable) and
    /// again each time the kernel frees what the daemon sent on it (the peer read it, or
    /// closed) or the peer hangs up. Closing the connection unregisters it.
    pub fn watch_held(&self, conn: BorrowedFd<'_>, slot: usize) -> nix::Result<()> {
        let flags = EpollFlags::EPOLLOUT | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
        self.epoll.add(
            conn.as_fd(),
            EpollEvent::new(flags, Token::Held(slot).data()),
        )
    }

    /// Waits until something is ready or `timeout` has passed (`None`: no timeout); returns
    /// how many events [`Events::token`] can read. An interrupted wait (a stop signal and
    /// SIGCONT) returns 0.
    pub fn wait(&mut self, timeout: Option<Duration>) -> nix::Result<usize> {
        let timeout = match timeout {
            None => EpollTimeout::NONE,
            Some(t) => {
                // Round up, so that a deadline is never woken for a millisecond too early.
                let ms = t.as_micros().div_ceil(1000).clamp(0, 60_000);
                EpollTimeout::from(ms as u16)
            }
        };
        self.count = match self.epoll.wait(&mut self.ready, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(e) => return Err(e),
        };
        Ok(self.count)
    }

    /// The held connections with an event pending now, without waiting, taken out of
    /// turn (when a cap is reached while answering). The signalfd's and the bindings'
    /// sockets' readiness, reported too, is left alone: they are level-triggered, so the
    /// next [`Events::wait`] reports them again.
    pub fn held_ready_now(&mut self) -> impl Iterator<Item = usize> + '_ {
        let n = self
            .epoll
            .wait(&mut self.now, EpollTimeout::ZERO)
            .unwrap_or(0);
        self.now[..n]
            .iter()
            .filter_map(|e| match Token::of(e.data()) {
                Token::Held(slot) => Some(slot),
                _ => None,
            })
    }

    /// The `i`-th descriptor of the last wait.
    pub fn token(&self, i: usize) -> Token {
        Token::of(self.ready[i].data())
    }

    /// Whether the signalfd was among the last wait's events.
    pub fn signalled(&self) -> bool {
        (0..self.count).any(|i| self.token(i) == Token::Signals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn tokens_round_trip() {
        for token in [
            Token::Signals,
            Token::Listener(0),
            Token::Listener(999),
            Token::Held(0),
            Token::Held(1 << 40),
        ] {
            assert_eq!(Token::of(token.data()), token);
        }
    }

    #[test]
    fn a_held_connection_is_reported_when_its_peer_reads() {
        let mut events = Events::new().unwrap();
        let (ours, theirs) = UnixStream::pair().unwrap();
        use std::io::{Read, Write};
        (&ours).write_all(b"x").unwrap();
        events.watch_held(ours.as_fd(), 7).unwrap();
        assert_eq!(
            events.wait(Some(Duration::ZERO)).unwrap(),
            1,
            "writable at once"
        );
        assert_eq!(
            events.wait(Some(Duration::ZERO)).unwrap(),
            0,
            "edge-triggered"
        );
        (&theirs).read_exact(&mut [0]).unwrap();
        assert_eq!(events.wait(Some(Duration::ZERO)).unwrap(), 1, "read");
        assert_eq!(events.token(0), Token::Held(7));
        drop(theirs);
        assert_eq!(events.wait(Some(Duration::ZERO)).unwrap(), 1, "hung up");
    }
}
