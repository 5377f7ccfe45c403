//! The one helper every wrapper shares: a C return value turned into an `io::Result`.

use std::io;

/// `Err` with errno for a negative return value, the value otherwise.
pub fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
