//! The `log` backend: standard error until syslog is opened, then glibc syslog(3)
//! (ident `portbinder`, LOG_PID, the configured facility). Not the `syslog` crate: it never
//! reconnects after the syslog daemon restarts, where glibc does.

use std::ffi::CString;
use std::io::Write;
use std::sync::atomic::{AtomicI32, Ordering};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::config::Facility;
use crate::serve::sys;

/// `-1` while logging to stderr; the syslog facility once syslog is open.
static FACILITY: AtomicI32 = AtomicI32::new(-1);

struct Logger;

static LOGGER: Logger = Logger;

/// Installs the logger, writing to standard error. Idempotent.
pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}

/// Opens syslog with `facility` and sends every later line there instead of stderr.
pub fn open_syslog(facility: Facility) {
    let facility = facility_code(facility);
    sys::openlog(c"portbinder", facility);
    FACILITY.store(facility, Ordering::SeqCst);
}

/// The syslog(3) facility code of a configured facility.
pub fn facility_code(facility: Facility) -> libc::c_int {
    match facility {
        Facility::Auth => libc::LOG_AUTH,
        Facility::Authpriv => libc::LOG_AUTHPRIV,
        Facility::Daemon => libc::LOG_DAEMON,
        Facility::User => libc::LOG_USER,
        Facility::Local0 => libc::LOG_LOCAL0,
        Facility::Local1 => libc::LOG_LOCAL1,
        Facility::Local2 => libc::LOG_LOCAL2,
        Facility::Local3 => libc::LOG_LOCAL3,
        Facility::Local4 => libc::LOG_LOCAL4,
        Facility::Local5 => libc::LOG_LOCAL5,
        Facility::Local6 => libc::LOG_LOCAL6,
        Facility::Local7 => libc::LOG_LOCAL7,
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Info
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = record.args().to_string();
        let facility = FACILITY.load(Ordering::SeqCst);
        if facility < 0 {
            // One write per line, so lines from several processes do not interleave.
            let line = format!("portbinder[{}]: {text}\n", std::process::id());
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
            return;
        }
        let level = match record.level() {
            Level::Error => libc::LOG_ERR,
            Level::Warn => libc::LOG_WARNING,
            Level::Info => libc::LOG_INFO,
            Level::Debug | Level::Trace => libc::LOG_DEBUG,
        };
        // Audit lines are escaped and hold no NUL; anything else is cut at one.
        let text = CString::new(text).unwrap_or_else(|e| {
            let end = e.nul_position();
            CString::new(&e.into_vec()[..end]).unwrap_or_default()
        });
        sys::syslog(level | facility, &text);
    }

    fn flush(&self) {}
}
