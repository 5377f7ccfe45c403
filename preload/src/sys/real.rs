//! The real functions behind the ones the shim defines itself.
//!
//! The shim defines close, close_range, closefrom, dup2, dup3 and bind, so a call to
//! `libc::close` from here would come back to the shim. The real ones are looked up once, at
//! load, with `dlsym(RTLD_NEXT)` (libc's, or the next interposer's), and called through
//! their addresses; until then (a call before the constructor has run) the system call is
//! made directly.

use std::sync::atomic::{AtomicUsize, Ordering};

use libc::{c_int, c_uint, sockaddr, socklen_t};

type BindFn = unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int;
type CloseFn = unsafe extern "C" fn(c_int) -> c_int;
type ClosefromFn = unsafe extern "C" fn(c_int);
type Dup3Fn = unsafe extern "C" fn(c_int, c_int, c_int) -> c_int;
type Dup2Fn = unsafe extern "C" fn(c_int, c_int) -> c_int;

/// The addresses of the next bind, close, closefrom, dup2 and dup3 (0 until resolved).
static REAL: [AtomicUsize; 5] = [const { AtomicUsize::new(0) }; 5];
const BIND: usize = 0;
const CLOSE: usize = 1;
const CLOSEFROM: usize = 2;
const DUP2: usize = 3;
const DUP3: usize = 4;

/// Resolves the real functions. Called from the load-time constructor only, since dlsym is
/// neither async-signal-safe nor cheap.
pub fn resolve_real_functions() {
    let names = [c"bind", c"close", c"closefrom", c"dup2", c"dup3"];
    for (slot, name) in REAL.iter().zip(names) {
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name only looks up a symbol.
        let address = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
        slot.store(address, Ordering::Release);
    }
}

fn real(index: usize) -> usize {
    REAL[index].load(Ordering::Acquire)
}

/// Calls the real bind(2).
///
/// # Safety
///
/// The arguments must satisfy bind(2)'s contract, as our caller's did.
pub unsafe fn real_bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    match real(BIND) {
        // SAFETY: bind(2) takes no pointer but `addr`, forwarded under the caller's contract.
        0 => unsafe { libc::syscall(libc::SYS_bind, fd, addr, len) as c_int },
        f => {
            // SAFETY: `f` is what dlsym gave for "bind", whose C signature is BindFn.
            let bind = unsafe { std::mem::transmute::<usize, BindFn>(f) };
            // SAFETY: forwarded unchanged under the caller's contract.
            unsafe { bind(fd, addr, len) }
        }
    }
}

/// Calls the real close(2).
pub fn real_close(fd: c_int) -> c_int {
    match real(CLOSE) {
        // SAFETY: close takes no pointer; closing a number that is not open gives EBADF.
        0 => unsafe { libc::syscall(libc::SYS_close, fd) as c_int },
        f => {
            // SAFETY: `f` is what dlsym gave for "close", whose C signature is CloseFn.
            let close = unsafe { std::mem::transmute::<usize, CloseFn>(f) };
            // SAFETY: close takes no pointer.
            unsafe { close(fd) }
        }
    }
}

/// Calls the real dup2(2) (`flags` is None) or dup3(2).
pub fn real_dup(old: c_int, new: c_int, flags: Option<c_int>) -> c_int {
    match (flags, real(DUP2), real(DUP3)) {
        (None, f @ 1.., _) => {
            // SAFETY: `f` is what dlsym gave for "dup2", whose C signature is Dup2Fn.
            let dup2 = unsafe { std::mem::transmute::<usize, Dup2Fn>(f) };
            // SAFETY: dup2 takes no pointer.
            unsafe { dup2(old, new) }
        }
        (Some(flags), _, f @ 1..) => {
            // SAFETY: `f` is what dlsym gave for "dup3", whose C signature is Dup3Fn.
            let dup3 = unsafe { std::mem::transmute::<usize, Dup3Fn>(f) };
            // SAFETY: dup3 takes no pointer.
            unsafe { dup3(old, new, flags) }
        }
        // Before the constructor: dup2(fd, fd) returns fd if it is open; otherwise both are
        // the dup3 system call (aarch64 has no dup2 system call).
        (None, 0, _) if old == new => {
            if status_flags(old).is_some() {
                new
            } else {
                -1
            }
        }
        // SAFETY: dup3 takes no pointer.
        (flags, ..) => unsafe {
            libc::syscall(libc::SYS_dup3, old, new, flags.unwrap_or(0)) as c_int
        },
    }
}

/// The close_range(2) system call.
pub fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    // SAFETY: close_range takes no pointer; it only closes (or marks) descriptors, which is
    // what our caller asked for on exactly this range.
    unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) as c_int }
}

/// Calls the real closefrom(3) (glibc's closes every fd from `low` up, with its own
/// fallback on kernels without close_range, and aborts if it cannot).
pub fn real_closefrom(low: c_int) {
    match real(CLOSEFROM) {
        0 => {
            close_range(low as c_uint, c_uint::MAX, 0);
        }
        f => {
            // SAFETY: `f` is what dlsym gave for "closefrom", whose C signature is ClosefromFn.
            let closefrom = unsafe { std::mem::transmute::<usize, ClosefromFn>(f) };
            // SAFETY: closefrom takes no pointer.
            unsafe { closefrom(low) }
        }
    }
}

/// The file status flags (F_GETFL: O_NONBLOCK…) of `fd`'s open file description (here,
/// beside the real dup that needs it to tell an open descriptor).
pub fn status_flags(fd: c_int) -> Option<c_int> {
    // SAFETY: F_GETFL only reads the open file description's flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    (flags >= 0).then_some(flags)
}
