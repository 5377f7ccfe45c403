//! `libportbinder_preload.so`: an LD_PRELOAD shim that serves a program's own bind(2)
//! calls with sockets granted by portbinder, for programs that know nothing of
//! `LISTEN_FDS`.
//!
//! `portbinder exec --preload NAME -- PROGRAM` fetches the binding, places its sockets at
//! fds 3, 4, …, names them in `PORTBINDER_FDS` (and their bindings in `PORTBINDER_FDNAMES`)
//! and execs PROGRAM with this library preloaded. When the program binds exactly the
//! address a granted socket is bound to (same family, type, protocol, IP and port), the
//! shim puts the granted socket in place of the program's socket (dup3 onto the same fd
//! number, keeping the program's close-on-exec flag) and returns 0, so the program's
//! listen() and accept() work on the shared socket. Everything else goes to the real
//! bind(2): a bind of 127.0.0.1:80 with a granted 0.0.0.0:80 is the real one, so a service
//! meant for loopback only is not exposed on every interface, unless
//! `PORTBINDER_PRELOAD_ANY_ADDRESS=1` (what `exec --preload-any-address` sets) asks for a
//! granted wildcard socket to serve any address of its port.
//!
//! O_NONBLOCK belongs to the socket's open file description, which every holder (the
//! daemon, each program) shares, so the shim leaves it as the binding set it. If the
//! program's socket was in the other mode (SOCK_NONBLOCK, or fcntl before bind), the
//! program gets the shared socket in the shared mode and the shim prints one line on
//! stderr naming the address, the binding, both modes and the fix (`nonblocking =
//! true|false` in the binding's configuration; README, "Limits", gives the wording). There
//! is no per-descriptor O_NONBLOCK to honour the program's choice with. A program that
//! changes the mode itself after bind (fcntl, ioctl FIONBIO) changes it for every holder.
//!
//! That line is the shim's only output (never written to an fd 2 that is an IPv4 or IPv6
//! socket). The shim opens no connection, never unwinds into C (a panic becomes EINVAL),
//! and by default removes itself and its variables from the environment so the program's
//! children do not inherit it (set `PORTBINDER_PRELOAD_INHERIT=1` to keep it).
//!
//! Limits: programs that make raw system calls (Go) bypass it: use `portbinder exec`
//! without `--preload`. The granted socket is shared with every holder, so socket options
//! set on it apply to all.

mod granted;
mod sys;
mod warning;

use std::panic::{AssertUnwindSafe, catch_unwind};

use libc::{c_int, sockaddr, socklen_t};

/// Runs once when the library is loaded, before the program's `main`, while the process
/// is single-threaded: reads and hides the granted descriptors.
extern "C" fn on_load() {
    let _ = catch_unwind(granted::init);
}

#[used]
#[unsafe(link_section = ".init_array")]
static ON_LOAD: extern "C" fn() = on_load;

/// The interposed bind(2).
///
/// # Safety
///
/// The caller passes what bind(2) takes: `addr` points to `len` readable bytes (or is
/// null, which the real bind rejects).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: forwarded from our own caller's contract (see above).
    let target = unsafe { sys::read_sockaddr(addr, len) };
    match catch_unwind(AssertUnwindSafe(|| {
        target.and_then(|t| granted::take_over(fd, &t))
    })) {
        Ok(Some(result)) => result,
        // SAFETY: the same arguments, untouched, to the real bind(2).
        Ok(None) => unsafe { sys::real_bind(fd, addr, len) },
        Err(_) => sys::fail(libc::EINVAL),
    }
}
