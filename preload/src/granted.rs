//! The granted sockets and the decision whether a bind(2) is one of them.

use std::net::SocketAddr;
use std::sync::OnceLock;

use libc::c_int;

use crate::sys;

/// The variable naming the granted descriptors (set by `portbinder exec --preload`).
const FDS_VAR: &str = "PORTBINDER_FDS";
/// Set to 1 to let the program's children inherit the shim and the sockets.
const INHERIT_VAR: &str = "PORTBINDER_PRELOAD_INHERIT";
/// Our file name, to remove from LD_PRELOAD.
const LIB_NAME: &str = "libportbinder_preload.so";

struct Granted {
    fd: c_int,
    /// SO_TYPE and SO_PROTOCOL.
    kind: (c_int, c_int),
    addr: SocketAddr,
}

static GRANTED: OnceLock<Vec<Granted>> = OnceLock::new();

/// Reads `PORTBINDER_FDS`, remembers each socket's type and address, and (unless asked
/// to be inherited) marks them close-on-exec and removes the shim from the environment.
pub fn init() {
    sys::resolve_real_bind();
    let inherit = std::env::var(INHERIT_VAR).is_ok_and(|v| v == "1");
    let granted: Vec<Granted> = std::env::var(FDS_VAR)
        .unwrap_or_default()
        .split(',')
        .filter_map(|n| n.trim().parse::<c_int>().ok())
        .filter_map(|fd| {
            let (kind, addr) = sys::describe(fd)?;
            if !inherit {
                sys::set_cloexec(fd);
            }
            Some(Granted { fd, kind, addr })
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
    }
}

/// If `target` is a granted socket's address for `fd`'s type, puts that socket at `fd`
/// and returns bind's result; `None` lets the real bind(2) handle it.
pub fn take_over(fd: c_int, target: &SocketAddr) -> Option<c_int> {
    let kind = sys::socket_type(fd)?;
    let granted = GRANTED.get()?.iter().find(|g| {
        g.kind == kind
            && g.addr.is_ipv4() == target.is_ipv4()
            && g.addr.port() == target.port()
            && (g.addr.ip() == target.ip() || g.addr.ip().is_unspecified())
    })?;
    Some(sys::replace(granted.fd, fd))
}
