//! Step 3 of start-up: every configured address gets its socket, adopted from the
//! descriptors passed with LISTEN_FDS when one matches (same binding name, protocol and
//! local address), bound afresh otherwise. An address whose bind(2) finds it in use gets,
//! if the rules allow, the socket recovered from the processes that hold it
//! ([`recover`]), which is then adopted like an inherited one. Either way the socket gets its
//! binding's options ([`options`]): a new one before bind(2), an adopted one (inherited or
//! recovered) as far as a bound socket can change, and an adopted socket that cannot match
//! is refused, never served as it is.

use std::collections::BTreeSet;
use std::os::fd::OwnedFd;

use nix::errno::Errno;

use crate::config::address::{ListenAddr, Proto};
use crate::config::{Binding, Origin};
use crate::serve::options::{self, OptionError};
use crate::serve::setup::listenfds::Inherited;
use crate::serve::setup::recover::{self, Audited, RecoverError};
use crate::serve::setup::sockdir::SocketDir;
use crate::serve::setup::socket;

/// The sockets of one binding, in configuration order.
#[derive(Debug)]
pub struct BoundSockets {
    /// One socket per configured address.
    pub fds: Vec<OwnedFd>,
    /// How many of them were inherited (LISTEN_FDS) rather than bound here.
    pub adopted: usize,
    /// How many of them were recovered from the processes holding them.
    pub recovered: usize,
}

/// A socket could not be bound or an inherited one does not fit.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// bind(2) (or socket/listen) failed.
    #[error("cannot bind {addr} for binding `{binding}`: {errno}{}", hint(*.errno, addr))]
    Bind {
        /// The binding.
        binding: String,
        /// The address.
        addr: ListenAddr,
        /// The cause.
        errno: Errno,
    },
    /// A socket option of the binding could not be given to one of its sockets.
    #[error("cannot give {addr} of binding `{binding}` ({origin}) its socket options: {option}")]
    Option {
        /// The binding.
        binding: String,
        /// The address.
        addr: ListenAddr,
        /// Where the configuration came from.
        origin: Origin,
        /// Which option, why, and the fix.
        option: Box<OptionError>,
    },
    /// An address in use is held by a socket that could not be recovered.
    #[error("{why}{}", hint(Errno::EADDRINUSE, addr))]
    Recover {
        /// The address it is about (the first one in use, for what concerns them all).
        addr: ListenAddr,
        /// Why (shown in the message itself, so not a `source` printed again as a cause).
        why: Box<RecoverError>,
    },
    /// An inherited descriptor names a binding but does not match its address's type.
    #[error(
        "inherited fd {fd} (named `{name}`) is {found}, but binding `{name}` lists {expected}: \
         pass a socket of the configured type or fix the configuration"
    )]
    Mismatch {
        /// The descriptor number as inherited.
        fd: i32,
        /// Its LISTEN_FDNAMES name.
        name: String,
        /// What it is.
        found: String,
        /// What the configuration asks for at that address.
        expected: ListenAddr,
    },
}

fn hint(errno: Errno, addr: &ListenAddr) -> String {
    let port = addr.addr.port();
    match errno {
        Errno::EADDRINUSE => format!(
            "\n  hint: another socket holds this address; `ss -lntup 'sport = :{port}'` shows its owner"
        ),
        Errno::EACCES => "\n  hint: ports below 1024 need root or CAP_NET_BIND_SERVICE".to_owned(),
        Errno::EADDRNOTAVAIL => "\n  hint: no local interface has this address".to_owned(),
        _ => String::new(),
    }
}

/// Every binding's sockets, and the inherited descriptors nothing claimed.
#[derive(Debug)]
pub struct Bound {
    /// Per binding, in configuration order.
    pub bindings: Vec<BoundSockets>,
    /// Inherited descriptors that match no binding and address, with a description.
    pub unused: Vec<(Inherited, String)>,
    /// One audit line per recovered socket, to log once syslog is open.
    pub recovered: Vec<Audited>,
}

/// A socket whose bind(2) found its address in use: where it is, for recovery.
struct InUse<'a> {
    binding: usize,
    index: usize,
    want: &'a ListenAddr,
}

/// Binds or adopts every address of every binding. Inherited descriptors that match no
/// configured binding and address are returned as left over, for the caller to log and
/// close (a binding may have been removed from the configuration). Recovery reads the record
/// of the sockets portbinder bound in `socket_dir`.
pub fn bind_all(
    bindings: &[Binding],
    inherited: Vec<Inherited>,
    origin: &Origin,
    socket_dir: &SocketDir,
) -> Result<Bound, BindError> {
    let mut pool: Vec<(Inherited, Option<ListenAddr>)> = inherited
        .into_iter()
        .map(|i| {
            let addr = socket::local_addr(&i.fd);
            (i, addr)
        })
        .collect();
    let mut all = Vec::with_capacity(bindings.len());
    let mut in_use = Vec::new();
    for (b, binding) in bindings.iter().enumerate() {
        let mut bound = BoundSockets {
            fds: Vec::with_capacity(binding.listen.len()),
            adopted: 0,
            recovered: 0,
        };
        for want in &binding.listen {
            if let Some(fd) = adopt(&mut pool, binding, want)? {
                make_ours(&fd, binding, want, origin)?;
                bound.fds.push(fd);
                bound.adopted += 1;
                continue;
            }
            let fd = socket::create(want).map_err(BindError::bind(binding, want))?;
            options::apply(&fd, want, &binding.options, options::Made::Here)
                .map_err(BindError::option(binding, want, origin))?;
            match socket::bind(&fd, want, binding.backlog) {
                // Perhaps by the socket a killed daemon left to its apps: see below. The
                // unbound socket keeps the place until then.
                Err(Errno::EADDRINUSE) => in_use.push(InUse {
                    binding: b,
                    index: bound.fds.len(),
                    want,
                }),
                other => other.map_err(BindError::bind(binding, want))?,
            }
            bound.fds.push(fd);
        }
        all.push(bound);
    }
    let recovered = match in_use.is_empty() {
        true => Vec::new(),
        false => recover_in_use(bindings, &mut all, &in_use, &pool, origin, socket_dir)?,
    };
    let left = pool
        .into_iter()
        .map(|(i, addr)| {
            let what = addr.map_or_else(|| "not a TCP or UDP socket".to_owned(), |a| a.to_string());
            (i, what)
        })
        .collect();
    Ok(Bound {
        bindings: all,
        unused: left,
        recovered,
    })
}

/// Gives the addresses found in use the sockets recovered from the processes holding them
/// (setup/recover/), adopted as inherited ones are. Where recovery finds no socket bound to
/// exactly the address, bind(2) is tried once more (the socket may have gone) and its error
/// stands.
fn recover_in_use(
    bindings: &[Binding],
    all: &mut [BoundSockets],
    in_use: &[InUse<'_>],
    pool: &[(Inherited, Option<ListenAddr>)],
    origin: &Origin,
    socket_dir: &SocketDir,
) -> Result<Vec<Audited>, BindError> {
    let ours: BTreeSet<u64> = pool
        .iter()
        .filter_map(|(i, _)| nix::sys::stat::fstat(&i.fd).ok().map(|s| s.st_ino))
        .collect();
    let asked: Vec<(&Binding, &ListenAddr)> = in_use
        .iter()
        .map(|u| (&bindings[u.binding], u.want))
        .collect();
    let recovery =
        recover::from_holders(&asked, &ours, socket_dir).map_err(|e| BindError::Recover {
            addr: *e.addr().unwrap_or(in_use[0].want),
            why: Box::new(e),
        })?;
    for (u, socket) in in_use.iter().zip(recovery.sockets) {
        let binding = &bindings[u.binding];
        let slot = &mut all[u.binding];
        match socket {
            Some(fd) => {
                make_ours(&fd, binding, u.want, origin)?;
                slot.fds[u.index] = fd;
                slot.recovered += 1;
            }
            None => socket::bind(&slot.fds[u.index], u.want, binding.backlog)
                .map_err(BindError::bind(binding, u.want))?,
        }
    }
    Ok(recovery.audit)
}

/// Takes the inherited socket for `want` out of `pool`, if there is one.
fn adopt(
    pool: &mut Vec<(Inherited, Option<ListenAddr>)>,
    binding: &Binding,
    want: &ListenAddr,
) -> Result<Option<OwnedFd>, BindError> {
    let Some(pos) = pool
        .iter()
        .position(|(i, addr)| i.name == binding.name && addr.is_some_and(|a| a.addr == want.addr))
    else {
        return Ok(None);
    };
    let (inherited, addr) = pool.swap_remove(pos);
    let found = addr.expect("matched on Some");
    if found.proto != want.proto {
        return Err(BindError::Mismatch {
            fd: inherited.number,
            name: inherited.name,
            found: found.to_string(),
            expected: *want,
        });
    }
    Ok(Some(inherited.fd))
}

/// Makes a socket that another process bound (inherited, or recovered from its holders) the
/// binding's, as far as a bound socket can change: the binding's options, then its backlog.
/// A socket unit may pass a bound TCP socket that is not listening yet, and a listening one
/// has the backlog it was given then: listen(2) sets the binding's either way (on a listening
/// socket, Linux only updates the backlog).
fn make_ours(
    fd: &OwnedFd,
    binding: &Binding,
    want: &ListenAddr,
    origin: &Origin,
) -> Result<(), BindError> {
    options::apply(fd, want, &binding.options, options::Made::Inherited)
        .map_err(BindError::option(binding, want, origin))?;
    if want.proto == Proto::Tcp {
        socket::listen(fd, binding.backlog).map_err(BindError::bind(binding, want))?;
    }
    Ok(())
}

impl BindError {
    /// A failed system call on `binding`'s socket for `addr`.
    fn bind<'b>(binding: &'b Binding, addr: &'b ListenAddr) -> impl Fn(Errno) -> BindError + 'b {
        move |errno| BindError::Bind {
            binding: binding.name.clone(),
            addr: *addr,
            errno,
        }
    }

    /// An option `binding`'s socket for `addr` (from `origin`) cannot take.
    fn option<'b>(
        binding: &'b Binding,
        addr: &'b ListenAddr,
        origin: &'b Origin,
    ) -> impl FnOnce(options::OptionError) -> BindError + 'b {
        move |option| BindError::Option {
            binding: binding.name.clone(),
            addr: *addr,
            origin: origin.clone(),
            option: Box::new(option),
        }
    }
}
