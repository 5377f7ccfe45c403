//! The granted sockets and the decision whether a bind(2) is one of them.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use libc::c_int;

use crate::sys;
use crate::warning::{self, Warning};

/// The variable naming the granted descriptors (set by `portbinder exec --preload`).
const FDS_VAR: &str = "PORTBINDER_FDS";
/// The binding of each granted descriptor, colon-separated (named in warnings).
const NAMES_VAR: &str = "PORTBINDER_FDNAMES";
/// Set to 1 to let the program's children inherit the shim and the sockets.
const INHERIT_VAR: &str = "PORTBINDER_PRELOAD_INHERIT";
/// Set to 1 to serve a bind of any address with a granted wildcard socket of that port.
const ANY_ADDRESS_VAR: &str = "PORTBINDER_PRELOAD_ANY_ADDRESS";
/// Our file name, to remove from LD_PRELOAD.
const LIB_NAME: &str = "libportbinder_preload.so";

struct Granted {
    fd: c_int,
    /// SO_TYPE and SO_PROTOCOL.
    kind: (c_int, c_int),
    addr: SocketAddr,
    /// The binding's name, empty if `exec` did not say.
    name: String,
}

static GRANTED: OnceLock<Vec<Granted>> = OnceLock::new();
static ANY_ADDRESS: AtomicBool = AtomicBool::new(false);

/// Reads `PORTBINDER_FDS`, remembers each socket's type and address, and (unless asked
/// to be inherited) marks them close-on-exec and removes the shim from the environment.
pub fn init() {
    sys::resolve_real_bind();
    let inherit = std::env::var(INHERIT_VAR).is_ok_and(|v| v == "1");
    let any_address = std::env::var(ANY_ADDRESS_VAR).is_ok_and(|v| v == "1");
    ANY_ADDRESS.store(any_address, Ordering::Relaxed);
    let names = std::env::var(NAMES_VAR).unwrap_or_default();
    let mut names = names.split(':');
    let granted: Vec<Granted> = std::env::var(FDS_VAR)
        .unwrap_or_default()
        .split(',')
        .filter_map(|n| n.trim().parse::<c_int>().ok())
        .filter_map(|fd| {
            let name = names.next().unwrap_or_default().to_owned();
            let (kind, addr) = sys::describe(fd)?;
            if !inherit {
                sys::set_cloexec(fd);
            }
            Some(Granted {
                fd,
                kind,
                addr,
                name,
            })
        })
        .collect();
    let _ = GRANTED.set(granted);
    if !inherit {
        let kept: Vec<String> = std::env::var("LD_PRELOAD")
            .unwrap_or_default()
            .split([':', ' '])
            .filter(|p| !p.is_empty() && !p.ends_with(LIB_NAME))
            .map(str::to_owned)
            .collect();
        sys::set_env_at_load(
            "LD_PRELOAD",
            (!kept.is_empty()).then(|| kept.join(":")).as_deref(),
        );
        sys::set_env_at_load(FDS_VAR, None);
        sys::set_env_at_load(ANY_ADDRESS_VAR, None);
        sys::set_env_at_load(NAMES_VAR, None);
    }
}

/// If `target` is exactly a granted socket's address (IP, port, and scope of a link-local
/// IPv6 address) for `fd`'s type, or with `PORTBINDER_PRELOAD_ANY_ADDRESS=1` any address
/// of the port of a granted wildcard socket, puts that socket at `fd` and returns bind's
/// result; `None` lets the real bind(2) handle it. The shared socket's O_NONBLOCK is
/// left as it is; if the program's socket was in the other mode, one line says so.
pub fn take_over(fd: c_int, target: &SocketAddr) -> Option<c_int> {
    let kind = sys::socket_type(fd)?;
    let any_address = ANY_ADDRESS.load(Ordering::Relaxed);
    let granted = GRANTED.get()?.iter().find(|g| {
        g.kind == kind
            && g.addr.is_ipv4() == target.is_ipv4()
            && (g.addr == *target
                || (any_address && g.addr.ip().is_unspecified() && g.addr.port() == target.port()))
    })?;
    let (result, mode) = sys::replace(granted.fd, fd);
    if let Some(shared_nonblocking) = mode {
        warning::print(Warning::Mode { shared_nonblocking }, target, &granted.name);
    }
    Some(result)
}
