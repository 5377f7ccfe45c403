//! Step 3 of start-up: every configured address gets its socket, adopted from the
//! descriptors passed with LISTEN_FDS when one matches (same binding name, protocol and
//! local address), bound afresh otherwise. Either way the socket gets its binding's options
//! ([`options`]): a new one before bind(2), an adopted one as far as a bound socket can
//! change, and an adopted socket that cannot match is refused, never served as it is.

use std::os::fd::OwnedFd;

use nix::errno::Errno;

use crate::config::address::{ListenAddr, Proto};
use crate::config::{Binding, Origin};
use crate::serve::setup::listenfds::Inherited;
use crate::serve::setup::options::{self, OptionError};
use crate::serve::setup::socket;

/// The sockets of one binding, in configuration order.
#[derive(Debug)]
pub struct BoundSockets {
    /// One socket per configured address.
    pub fds: Vec<OwnedFd>,
    /// How many of them were inherited rather than bound here.
    pub adopted: usize,
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
}

/// Binds or adopts every address of every binding. Inherited descriptors that match no
/// configured binding and address are returned as left over, for the caller to log and
/// close (a binding may have been removed from the configuration).
pub fn bind_all(
    bindings: &[Binding],
    inherited: Vec<Inherited>,
    origin: &Origin,
) -> Result<Bound, BindError> {
    let mut pool: Vec<(Inherited, Option<ListenAddr>)> = inherited
        .into_iter()
        .map(|i| {
            let addr = socket::local_addr(&i.fd);
            (i, addr)
        })
        .collect();
    let mut all = Vec::with_capacity(bindings.len());
    for binding in bindings {
        let mut bound = BoundSockets {
            fds: Vec::with_capacity(binding.listen.len()),
            adopted: 0,
        };
        for want in &binding.listen {
            let option_error = |option| BindError::Option {
                binding: binding.name.clone(),
                addr: *want,
                origin: origin.clone(),
                option: Box::new(option),
            };
            if let Some(fd) = adopt(&mut pool, binding, want)? {
                options::apply(&fd, want, &binding.options, options::Made::Inherited)
                    .map_err(option_error)?;
                bound.fds.push(fd);
                bound.adopted += 1;
                continue;
            }
            let bind_error = |errno| BindError::Bind {
                binding: binding.name.clone(),
                addr: *want,
                errno,
            };
            let fd = socket::create(want).map_err(bind_error)?;
            options::apply(&fd, want, &binding.options, options::Made::Here)
                .map_err(option_error)?;
            socket::bind(&fd, want, binding.backlog).map_err(bind_error)?;
            bound.fds.push(fd);
        }
        all.push(bound);
    }
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
    })
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
    // A socket unit may pass a bound TCP socket that is not listening yet.
    if want.proto == Proto::Tcp && !socket::is_listening(&inherited.fd) {
        socket::listen(&inherited.fd, binding.backlog).map_err(|errno| BindError::Bind {
            binding: binding.name.clone(),
            addr: *want,
            errno,
        })?;
    }
    Ok(Some(inherited.fd))
}
