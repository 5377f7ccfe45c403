//! Keeping the granted sockets through the program's own descriptor housekeeping: a close
//! of every inherited fd (a loop, closefrom, close_range) leaves them open, and a dup2 or
//! dup3 onto the number one is kept at moves it first. Each function here is the body of an
//! interposed libc function; none allocates or locks (they may run in a signal handler, or
//! in a child between fork and exec), and errno is the real function's alone.
//!
//! What cannot be caught: system calls made without libc (`syscall(SYS_close_range, …)`,
//! Go, glibc's own internal calls such as posix_spawn's file actions). A socket closed or
//! replaced that way is found out at bind time by its identity, and the real bind is used.

use libc::{c_int, c_uint};

use crate::granted::{self, MAX_GRANTED, Table};
use crate::sys;

/// Runs `f` with errno saved, so that the shim's own checks never leak an errno into the
/// program's (a signal handler's close must leave errno as it found it).
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    let saved = sys::errno();
    let result = f();
    sys::set_errno(saved);
    result
}

/// close(2): a number that still holds a granted socket is left open and reported closed,
/// since the program is closing what it believes is an inherited descriptor.
pub fn close(fd: c_int) -> c_int {
    let kept = quietly(|| granted::table().and_then(|t| t.kept_at(fd)).is_some());
    if kept { 0 } else { sys::real_close(fd) }
}

/// close_range(2) as the shim sees it: the range closed (or marked close-on-exec, with
/// CLOSE_RANGE_CLOEXEC) around the kept numbers, which are left as they are.
pub fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    let mut buf = [0; MAX_GRANTED];
    let kept = quietly(|| match granted::table() {
        Some(table) if first <= last => table.kept_in(first, last, &mut buf).len(),
        _ => 0,
    });
    if kept == 0 {
        return sys::close_range(first, last, flags);
    }
    let mut result = 0;
    for_gaps(first, last, &buf[..kept], |from, to| {
        if sys::close_range(from, to, flags) != 0 && result == 0 {
            result = -1;
            return false;
        }
        true
    });
    result
}

/// closefrom(3): every number from `low` up closed except the kept ones; above the highest
/// kept number, the real closefrom does the rest (glibc's, with its fallbacks).
pub fn closefrom(low: c_int) {
    let low = low.max(0);
    let mut buf = [0; MAX_GRANTED];
    let kept = quietly(|| {
        granted::table().map_or(0, |t| t.kept_in(low as c_uint, c_uint::MAX, &mut buf).len())
    });
    let Some(&highest) = buf[..kept].last() else {
        return sys::real_closefrom(low);
    };
    for_gaps(
        low as c_uint,
        highest as c_uint,
        &buf[..kept],
        |from, to| {
            if sys::close_range(from, to, 0) != 0 {
                // A kernel without close_range (before 5.9): one close per number.
                (from..=to).for_each(|fd| {
                    sys::real_close(fd as c_int);
                });
            }
            true
        },
    );
    sys::real_closefrom(highest + 1);
}

/// Calls `each(from, to)` for every maximal range of `first..=last` that contains none of
/// `kept` (ascending), until `each` returns false.
fn for_gaps(
    first: c_uint,
    last: c_uint,
    kept: &[c_int],
    mut each: impl FnMut(c_uint, c_uint) -> bool,
) {
    let mut from = first;
    for &fd in kept {
        let fd = fd as c_uint;
        if fd > from && !each(from, fd - 1) {
            return;
        }
        match fd.checked_add(1) {
            Some(next) => from = next,
            None => return,
        }
    }
    if from <= last {
        each(from, last);
    }
}

/// dup2(2) (`flags` None) and dup3(2): if `new` holds a granted socket, the socket is moved
/// to another number first, so that the program's descriptor takes `new` as it asked and
/// the shim keeps its socket.
pub fn dup(old: c_int, new: c_int, flags: Option<c_int>) -> c_int {
    if old != new {
        quietly(|| {
            if let Some(table) = granted::table() {
                move_out_of_the_way(table, new);
            }
        });
    }
    sys::real_dup(old, new, flags)
}

fn move_out_of_the_way(table: &Table, fd: c_int) {
    if let Some(granted) = table.kept_at(fd) {
        table.move_aside(granted, fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaps(first: c_uint, last: c_uint, kept: &[c_int]) -> Vec<(c_uint, c_uint)> {
        let mut out = Vec::new();
        for_gaps(first, last, kept, |a, b| {
            out.push((a, b));
            true
        });
        out
    }

    #[test]
    fn ranges_are_split_around_the_kept_numbers() {
        assert_eq!(gaps(3, 100, &[]), [(3, 100)]);
        assert_eq!(gaps(3, 100, &[50, 51]), [(3, 49), (52, 100)]);
        assert_eq!(gaps(3, 100, &[3, 100]), [(4, 99)]);
        assert_eq!(gaps(3, 3, &[3]), []);
        assert_eq!(
            gaps(3, c_uint::MAX, &[1022, 1023]),
            [(3, 1021), (1024, c_uint::MAX)]
        );
        // `each` returning false stops the walk.
        let mut calls = 0;
        for_gaps(3, 100, &[10, 20], |_, _| {
            calls += 1;
            false
        });
        assert_eq!(calls, 1);
    }
}
