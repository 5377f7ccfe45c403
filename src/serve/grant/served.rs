//! The bindings as the serve loop serves them, each owned for the daemon's lifetime: its
//! configuration and its bound sockets, under the index it had at start-up. A reload swaps a
//! binding's configuration in, or closes its sockets when it is removed; the index stays, so
//! that the counts kept by binding (unread grants, audit windows) never point at another one.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::config::Binding;

/// One binding as served: its configuration and its bound sockets, in configuration order.
#[derive(Debug)]
pub struct Served {
    /// The binding, as the configuration in force says.
    pub binding: Binding,
    /// The raw numbers of its sockets, for sendmsg (empty once it is removed).
    pub fds: Vec<RawFd>,
    sockets: Vec<OwnedFd>,
}

impl Served {
    /// `binding` served with `sockets`, bound to its `listen` addresses in order.
    pub fn new(binding: Binding, sockets: Vec<OwnedFd>) -> Served {
        Served {
            binding,
            fds: sockets.iter().map(AsRawFd::as_raw_fd).collect(),
            sockets,
        }
    }

    /// Its sockets, in the order of its `listen` addresses.
    pub fn sockets(&self) -> &[OwnedFd] {
        &self.sockets
    }

    /// Closes its sockets: the binding was removed. Programs holding them keep them; its
    /// configuration stays, for the name in the counts still to report.
    pub fn close(&mut self) {
        self.fds.clear();
        self.sockets.clear();
    }
}
