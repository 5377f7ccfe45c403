//! The granted sockets: where the shim keeps them and the table that says which is where.
//!
//! At load, each socket named in `PORTBINDER_FDS` is recorded (its [`Identity`]) and moved
//! to a high number, just under `min(soft RLIMIT_NOFILE, 1024)`, so the numbers 3, 4, … are
//! free again and the program's own descriptors land there as they would without the shim.
//! The cap at 1024 keeps the kernel's descriptor table small (a process's table is sized by
//! its highest number and copied at every fork). The number each socket is kept at is an
//! atomic, changed with compare-and-swap when the shim moves it out of a dup2's way, and set
//! to -1 when the socket is lost (closed or replaced by a system call the shim cannot see).

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};

use libc::c_int;

use crate::env::{self, Entry, Settings};
use crate::identity::{Identity, Kind};
use crate::sys;

/// At most this many sockets are kept (SCM_MAX_FD: no grant carries more).
pub const MAX_GRANTED: usize = 253;
/// The highest number the shim keeps a socket under, when the fd limit is higher.
const KEEP_BELOW: u64 = 1024;
/// Binding names are at most 64 bytes (`portbinder check` enforces it).
const NAME_MAX: usize = 64;

/// One granted socket.
#[derive(Debug)]
pub struct Granted {
    /// Where it is kept now; -1 once lost.
    fd: AtomicI32,
    identity: Identity,
    name: [u8; NAME_MAX],
    name_len: usize,
}

impl Granted {
    /// The number it is kept at now, `None` once lost.
    pub fn fd(&self) -> Option<c_int> {
        Some(self.fd.load(Ordering::Acquire)).filter(|&fd| fd >= 0)
    }

    /// What it is.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Its binding's name (empty if `exec` did not say).
    pub fn name(&self) -> &str {
        std::str::from_utf8(&self.name[..self.name_len]).unwrap_or("")
    }

    /// Records that it is now kept at `to` (-1: lost) instead of `from`. Returns false, and
    /// changes nothing, if another thread has moved or forgotten it in the meantime.
    pub fn moved(&self, from: c_int, to: c_int) -> bool {
        self.fd
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// Every granted socket, and how binds are matched to them.
#[derive(Debug)]
pub struct Table {
    granted: Box<[Granted]>,
    /// Serve a bind of any address with a wildcard socket of the same port.
    any_address: bool,
    /// Keep the sockets close-on-exec (unless the program's children inherit them).
    cloexec: bool,
    /// The lowest number the sockets are kept at, where moved ones go back to first.
    keep_from: c_int,
}

static TABLE: OnceLock<Table> = OnceLock::new();

/// The table, once the constructor has built it. An atomic load: safe in a signal handler.
pub fn table() -> Option<&'static Table> {
    TABLE.get()
}

impl Table {
    /// Whether some granted socket is at the address `target` (see [`Table::serving`]), which
    /// needs no system call: most binds ask for an address nothing was granted for.
    pub fn has_address(&self, target: &SocketAddr) -> bool {
        self.granted
            .iter()
            .any(|g| g.identity.serves_address(target, self.any_address))
    }

    /// The granted socket a bind of `target` on a socket of kind `kind` asks for.
    pub fn serving(&self, kind: Kind, target: &SocketAddr) -> Option<&Granted> {
        self.granted
            .iter()
            .find(|g| g.identity.serves(kind, target, self.any_address))
    }

    /// The granted socket kept at `fd`, if `fd` still holds it. One found at `fd` that no
    /// longer holds it is forgotten: the number is the program's now.
    pub fn kept_at(&self, fd: c_int) -> Option<&Granted> {
        if fd < 0 {
            return None;
        }
        let granted = self.granted.iter().find(|g| g.fd() == Some(fd))?;
        if granted.identity.is_file_at(fd) {
            Some(granted)
        } else {
            granted.moved(fd, -1);
            None
        }
    }

    /// The numbers in `first..=last` that still hold a granted socket, ascending, in `out`.
    pub fn kept_in<'a>(
        &self,
        first: u32,
        last: u32,
        out: &'a mut [c_int; MAX_GRANTED],
    ) -> &'a [c_int] {
        let mut n = 0;
        for granted in &self.granted {
            let Some(fd) = granted.fd() else { continue };
            if !(first..=last).contains(&(fd as u32)) || out[..n].contains(&fd) {
                continue;
            }
            // As kept_at, on the entry at hand: a number that no longer holds it is forgotten.
            if granted.identity.is_file_at(fd) {
                out[n] = fd;
                n += 1;
            } else {
                granted.moved(fd, -1);
            }
        }
        out[..n].sort_unstable();
        &out[..n]
    }

    /// Moves `granted`, kept at `from`, to another number, before a dup2 or dup3 of the
    /// program's replaces `from`. If no number is free, the socket is given up (the
    /// program's dup2 must work as it would without the shim).
    ///
    /// A child made with vfork() shares this table with its parent but not its descriptors:
    /// a dup2 onto a kept number there records a move the parent did not make. The parent's
    /// bind then finds the number holds something else and uses the real bind (posix_spawn
    /// makes its dup2 calls inside glibc, which the shim does not see, so it is unaffected).
    pub fn move_aside(&self, granted: &Granted, from: c_int) {
        let to = sys::dup_at_least(from, self.keep_from, self.cloexec)
            .or_else(|| sys::dup_at_least(from, 3, self.cloexec));
        match to {
            Some(to) if granted.identity.is_file_at(to) => {
                if !granted.moved(from, to) {
                    sys::real_close(to);
                }
            }
            Some(to) => {
                sys::real_close(to);
                granted.moved(from, -1);
            }
            None => {
                granted.moved(from, -1);
            }
        }
    }
}

/// Where to keep `count` sockets: the numbers just under min(fd limit, 1024).
fn keep_from(count: usize) -> c_int {
    let top = sys::fd_limit().min(KEEP_BELOW);
    top.saturating_sub(count as u64).max(3) as c_int
}

/// Moves the socket at `fd` to `keep_from` or above and closes `fd`; leaves it where it is
/// if it is already there or no number up there is free.
fn keep(fd: c_int, keep_from: c_int, cloexec: bool) -> c_int {
    if fd >= keep_from {
        if cloexec {
            sys::set_cloexec(fd);
        }
        return fd;
    }
    match sys::dup_at_least(fd, keep_from, cloexec) {
        Some(high) => {
            sys::real_close(fd);
            high
        }
        None => {
            if cloexec {
                sys::set_cloexec(fd);
            }
            fd
        }
    }
}

/// Reads `PORTBINDER_FDS`, records and moves each granted socket, and hides the shim from
/// the program's children unless they are to inherit it. Constructor only (one thread).
pub fn init() {
    sys::resolve_real_functions();
    let settings = Settings::read();
    let keep_from = keep_from(settings.fds.len().min(MAX_GRANTED));
    let cloexec = !settings.inherit;
    let mut granted = Vec::new();
    for (i, entry) in settings.fds.iter().take(MAX_GRANTED).enumerate() {
        let Some(identity) = Identity::of(entry.fd) else {
            continue;
        };
        if entry.inode.is_some_and(|inode| inode != identity.file.1) {
            continue; // not the socket the parent's shim kept at that number
        }
        let name = settings.names.get(i).map_or("", String::as_str);
        let name = if name.len() <= NAME_MAX { name } else { "" };
        let mut bytes = [0; NAME_MAX];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        granted.push(Granted {
            fd: AtomicI32::new(keep(entry.fd, keep_from, cloexec)),
            identity,
            name: bytes,
            name_len: name.len(),
        });
    }
    if settings.inherit {
        let kept: Vec<Entry> = granted
            .iter()
            .filter_map(|g| {
                Some(Entry {
                    fd: g.fd()?,
                    inode: Some(g.identity.file.1),
                })
            })
            .collect();
        let names: Vec<&str> = granted.iter().map(Granted::name).collect();
        env::publish(&kept, &names);
    } else {
        env::hide();
    }
    let _ = TABLE.set(Table {
        granted: granted.into_boxed_slice(),
        any_address: settings.any_address,
        cloexec,
        keep_from,
    });
}
