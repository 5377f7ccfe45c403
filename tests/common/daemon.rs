//! A running `portbinder serve` ([`Daemon`]): started and waited for until ready, its syslog
//! lines and audit events, its signals and its resources as `/proc` shows them.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::process::{Command, ExitStatus};
use std::thread;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::{
    EXIT_TIMEOUT, Event, LOG_TIMEOUT, Proc, STARTUP_TIMEOUT, cpu_ticks, portbinder_command,
    proc_fd_links, proc_fds, proc_status, syslog_lines_since, syslog_offset, wait_until,
};

/// A running `portbinder serve`, killed on drop.
pub struct Daemon {
    proc: Proc,
    log_offset: u64,
}

impl Daemon {
    /// Starts `portbinder serve <args...>` and waits until it logs `event=ready`.
    pub fn start<S: AsRef<OsStr>>(args: &[S]) -> Daemon {
        let mut cmd = portbinder_command(&["serve"]);
        cmd.args(args);
        Daemon::spawn(cmd)
    }

    /// Spawns `cmd` (a `portbinder serve` whose pid is the daemon's, e.g. through
    /// `sh -c 'exec ...'`) and waits until it logs `event=ready` to syslog or, with
    /// `--log stderr`, to stderr. Panics with the daemon's output if it exits or times out.
    pub fn spawn(cmd: Command) -> Daemon {
        let log_offset = syslog_offset();
        let mut daemon = Daemon {
            proc: Proc::spawn(cmd, "portbinder serve"),
            log_offset,
        };
        let ready = wait_until(STARTUP_TIMEOUT, || {
            daemon.proc.stderr().contains("event=ready")
                || daemon
                    .log_lines()
                    .iter()
                    .any(|l| l.contains(": event=ready"))
                || daemon.proc.try_status().is_some()
        });
        if let Some(status) = daemon.proc.try_status() {
            thread::sleep(Duration::from_millis(200));
            panic!(
                "daemon exited during start-up ({status})\n{}",
                daemon.report()
            );
        }
        assert!(
            ready,
            "daemon not ready after {STARTUP_TIMEOUT:?}\n{}",
            daemon.report()
        );
        daemon
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// What the daemon wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.proc.stderr()
    }

    /// The syslog lines this daemon wrote (`portbinder[PID]:`), oldest first.
    pub fn log_lines(&self) -> Vec<String> {
        let tag = format!("portbinder[{}]:", self.pid());
        syslog_lines_since(self.log_offset)
            .into_iter()
            .filter(|l| l.contains(&tag))
            .collect()
    }

    /// This daemon's audit events (parsed syslog lines), oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.log_lines().iter().map(|l| Event::parse(l)).collect()
    }

    /// This daemon's audit events of one kind (`event=KIND`).
    pub fn events_of(&self, kind: &str) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|e| e.kind() == kind)
            .collect()
    }

    /// Waits until this daemon logs an event of `kind` matching every `key=value` of `fields`.
    pub fn wait_event(&self, kind: &str, fields: &[(&str, &str)]) -> Event {
        let mut found = None;
        wait_until(LOG_TIMEOUT, || {
            found = self
                .events_of(kind)
                .into_iter()
                .find(|e| fields.iter().all(|(k, v)| e.get(k) == Some(v)));
            found.is_some()
        });
        found.unwrap_or_else(|| {
            panic!(
                "no event={kind} with {fields:?} within {LOG_TIMEOUT:?}\n{}",
                self.report()
            )
        })
    }

    /// Sends `sig` to the daemon.
    pub fn signal(&self, sig: Signal) {
        self.proc.signal(sig);
    }

    /// True while the daemon has not exited.
    pub fn is_running(&mut self) -> bool {
        self.proc.try_status().is_none()
    }

    /// Sends `sig` and waits (bounded) for the daemon to exit; returns its status.
    pub fn stop_with(&mut self, sig: Signal) -> ExitStatus {
        self.signal(sig);
        self.proc.wait_timeout(EXIT_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "daemon still running {EXIT_TIMEOUT:?} after {sig}\n{}",
                self.report()
            )
        })
    }

    /// SIGTERM, then waits (bounded) for the daemon to exit; returns its status.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_with(Signal::SIGTERM)
    }

    /// The number of open fds of the daemon (`/proc/PID/fd`).
    pub fn fd_count(&self) -> usize {
        proc_fds(self.pid()).len()
    }

    /// Waits (bounded) until the daemon's fd count equals `expected`; panics otherwise.
    pub fn wait_fd_count(&self, expected: usize) {
        let ok = wait_until(Duration::from_secs(5), || self.fd_count() == expected);
        assert!(
            ok,
            "daemon has {} fds, expected {expected}: {:?}\n{}",
            self.fd_count(),
            proc_fd_links(self.pid()),
            self.report()
        );
    }

    /// The fields of the daemon's `/proc/PID/status`.
    pub fn proc_status(&self) -> HashMap<String, String> {
        proc_status(self.pid())
    }

    /// CPU time the daemon used so far, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        cpu_ticks(self.pid())
    }

    /// The daemon's stderr and syslog lines, for failure messages.
    pub fn report(&self) -> String {
        format!(
            "--- daemon pid {} stderr ---\n{}--- daemon syslog lines ---\n{}\n--- end ---",
            self.pid(),
            self.stderr(),
            self.log_lines().join("\n")
        )
    }
}
