//! glibc's own state: syslog(3), the name-service configuration and the time zone, set up
//! before the sandbox so that nothing in them opens a file later.

use std::ffi::CStr;
use std::io;

/// Opens the syslog connection now (LOG_NDELAY), so no later call needs to open /dev/log
/// from inside the sandbox. glibc reconnects by itself if the syslog daemon restarts.
pub fn openlog(ident: &'static CStr, facility: libc::c_int) {
    // SAFETY: glibc keeps the `ident` pointer for later syslog() calls; it is 'static.
    unsafe { libc::openlog(ident.as_ptr(), libc::LOG_PID | libc::LOG_NDELAY, facility) };
}

/// Sends one message to syslog with the given priority (level | facility).
pub fn syslog(priority: libc::c_int, message: &CStr) {
    // SAFETY: the format is a literal "%s" consuming exactly one NUL-terminated string,
    // which `message` is; the message itself is never used as a format.
    unsafe { libc::syslog(priority, c"%s".as_ptr(), message.as_ptr()) };
}

unsafe extern "C" {
    /// glibc: replaces a database's nsswitch.conf line for this process (see the glibc
    /// manual, "Name Service Switch", and nss(5)).
    fn __nss_configure_lookup(
        db: *const libc::c_char,
        service_line: *const libc::c_char,
    ) -> libc::c_int;
}

/// Makes user and group lookups read the local files only (`passwd: files`,
/// `group: files`), for the rest of the process's life. glibc then neither loads another
/// NSS module, nor asks nscd, nor re-reads nsswitch.conf: inside the sandbox a lookup is
/// openat/fstat/read/close of /etc/passwd or /etc/group and nothing else.
pub fn nss_files_only() -> io::Result<()> {
    for db in [c"passwd", c"group"] {
        // SAFETY: both arguments are NUL-terminated 'static strings; glibc copies what it
        // keeps. Called during start-up, while the process has one thread.
        if unsafe { __nss_configure_lookup(db.as_ptr(), c"files".as_ptr()) } != 0 {
            return Err(io::Error::other(format!(
                "__nss_configure_lookup({}, files) failed",
                db.to_string_lossy()
            )));
        }
    }
    Ok(())
}

/// Loads the local time zone now (tzset(3)), so that glibc's syslog(3), which stamps each
/// message with the local time, never needs /etc/localtime or the zoneinfo file it links
/// to once the sandbox forbids reading them.
pub fn tzset() {
    unsafe extern "C" {
        fn tzset();
    }
    // SAFETY: tzset takes no arguments; it reads TZ and the zone file into glibc's own
    // state. Called during start-up, while the process has one thread.
    unsafe { tzset() };
}
