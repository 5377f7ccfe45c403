//! `libportbinder_preload.so`: an LD_PRELOAD shim that serves a program's own bind(2)
//! calls with sockets granted by portbinder, for programs that know nothing of
//! `LISTEN_FDS`.
//!
//! `portbinder exec --preload NAME -- PROGRAM` fetches the binding, places its sockets at
//! fds 3, 4, …, names them in `PORTBINDER_FDS` (and their bindings in `PORTBINDER_FDNAMES`)
//! and execs PROGRAM with this library preloaded.
//!
//! **Where the sockets are kept.** At load, before the program's `main`, the shim records
//! each granted socket's identity (device and inode, domain, type, protocol, local address)
//! and moves it to a number just under `min(soft RLIMIT_NOFILE, 1024)`, close-on-exec, so
//! 3, 4, … are free again for the program. A program that closes every inherited fd keeps
//! them anyway: the shim interposes close(), close_range() and closefrom(), which leave the
//! kept numbers open (close() returns 0), and dup2() and dup3(), which move a kept socket
//! aside before the program's descriptor takes its number. fcntl(F_DUPFD) never replaces
//! an open descriptor, so it needs nothing.
//!
//! **Which binds are served.** A bind whose socket has the granted socket's domain, type
//! and protocol, and whose address is exactly the granted address (IP, port, and scope of
//! a link-local IPv6 address), gets the granted socket: the shim checks that the number it
//! kept still holds that very socket (every field of the identity before the dup3, the
//! inode again after it), puts it in place of the program's socket (dup3 onto the same fd
//! number, keeping the program's close-on-exec flag) and returns 0, so the program's
//! listen() and accept() work on the shared socket. With `PORTBINDER_PRELOAD_ANY_ADDRESS=1` (what `exec
//! --preload-any-address` sets), a bind of any address is also served by a granted
//! wildcard socket (0.0.0.0 or `::`) of the same port: a program meant to listen on
//! 127.0.0.1 then listens on every interface, which is why it is not the default. Every
//! other bind is the real bind(2).
//!
//! **What cannot be caught.** System calls made without libc (`syscall(SYS_close_range,
//! …)`, `syscall(SYS_dup2, …)`, Go binaries, glibc's internal calls such as posix_spawn's
//! file actions) can close or replace a kept socket. A bind of a granted address then
//! finds that the kept number no longer holds the recorded socket, uses the real bind(2)
//! (EACCES for an unprivileged program on a port below 1024), and says so in one line.
//! It never hands out whatever descriptor now has the number.
//!
//! **Blocking mode.** O_NONBLOCK belongs to the socket's open file description, which
//! every holder (the daemon, each program) shares. The shim leaves it as the binding set
//! it: if the program's socket was in the other mode (SOCK_NONBLOCK, or fcntl before bind),
//! the program gets the shared socket in the shared mode and the shim prints one line
//! naming the address, the binding, both modes and the fix (`nonblocking = true|false` in
//! the binding's configuration). There is no per-descriptor O_NONBLOCK to honour the
//! program's choice with. A program that changes the mode itself after bind (fcntl, ioctl
//! FIONBIO) changes it for every holder; the shim does not see that.
//!
//! **Output.** Only those two warnings (README, "Limits", and docs/CLIENTS.md give their
//! wording), on stderr, one line each, prefixed
//! `portbinder-preload:`, and never written to an fd 2 that is an IPv4 or IPv6 socket.
//! The shim opens no connection and never unwinds into C (a panic, which would be a bug,
//! makes the real call, or fails bind with EINVAL). By default it removes itself and its variables from the environment and
//! keeps the sockets close-on-exec, so the program's children do not inherit it; with
//! `PORTBINDER_PRELOAD_INHERIT=1` they inherit both, and `PORTBINDER_FDS` then names the
//! kept numbers with their inodes.
//!
//! **Signals and threads.** close(), close_range(), dup2() and dup3() may be called
//! anywhere: their wrappers allocate nothing, take no lock and leave errno to the real
//! call. The numbers the sockets are kept at are atomics, changed with compare-and-swap.
//!
//! Limits: programs that make raw system calls for bind (Go) bypass the shim: use
//! `portbinder exec` without `--preload`.

mod env;
mod granted;
mod guard;
mod handover;
mod identity;
mod sys;
mod warning;

use std::panic::{AssertUnwindSafe, catch_unwind};

use libc::{c_int, c_uint, sockaddr, socklen_t};

/// Runs once when the library is loaded, before the program's `main`, while the process
/// is single-threaded: records, moves and hides the granted descriptors.
extern "C" fn on_load() {
    let _ = catch_unwind(granted::init);
}

// SAFETY: .init_array holds pointers to functions the dynamic loader calls, with no
// arguments, once the library is loaded; `on_load` is such a function, and it catches any
// panic rather than unwinding into the loader.
#[used]
#[unsafe(link_section = ".init_array")]
static ON_LOAD: extern "C" fn() = on_load;

// The functions below are exported under libc's names (`#[unsafe(no_mangle)]`), with
// exactly libc's C signatures, so that the dynamic linker binds the program's calls to
// them: interposing those symbols is the shim's purpose, and each forwards to the real one
// (looked up with dlsym(RTLD_NEXT) in sys/real.rs) whenever the granted sockets are not
// concerned. Each catches panics, so none unwinds into C; a panic (a bug) makes the real
// call, or fails bind with EINVAL.

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
        target.and_then(|t| handover::take_over(fd, &t))
    })) {
        Ok(Some(result)) => result,
        // SAFETY: the same arguments, untouched, to the real bind(2).
        Ok(None) => unsafe { sys::real_bind(fd, addr, len) },
        Err(_) => sys::fail(libc::EINVAL),
    }
}

/// The interposed close(2): a number that holds a granted socket stays open (returns 0).
#[unsafe(no_mangle)]
pub extern "C" fn close(fd: c_int) -> c_int {
    catch_unwind(|| guard::close(fd)).unwrap_or_else(|_| sys::real_close(fd))
}

/// The interposed close_range(2): closes the range except the kept numbers.
#[unsafe(no_mangle)]
pub extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    catch_unwind(|| guard::close_range(first, last, flags))
        .unwrap_or_else(|_| sys::close_range(first, last, flags))
}

/// The interposed closefrom(3): closes every fd from `low` up except the kept numbers.
#[unsafe(no_mangle)]
pub extern "C" fn closefrom(low: c_int) {
    if catch_unwind(|| guard::closefrom(low)).is_err() {
        sys::real_closefrom(low);
    }
}

/// The interposed dup2(2): moves a kept socket out of `new`'s way first.
#[unsafe(no_mangle)]
pub extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    catch_unwind(|| guard::dup(old, new, None)).unwrap_or_else(|_| sys::real_dup(old, new, None))
}

/// The interposed dup3(2): moves a kept socket out of `new`'s way first.
#[unsafe(no_mangle)]
pub extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    catch_unwind(|| guard::dup(old, new, Some(flags)))
        .unwrap_or_else(|_| sys::real_dup(old, new, Some(flags)))
}
