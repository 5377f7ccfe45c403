//! What the reload tests (tests/reload.rs, tests/reload_refused.rs, tests/reload_undo.rs)
//! share: a configuration the run user can read (the reload reads it after the drop), one
//! SIGHUP and the audit lines it produced (and the refused changes among them), and a socket
//! file's mode. The backlog as `ss` shows it is `sockopts::listen_backlog`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use nix::sys::signal::Signal;

use super::{Daemon, Event, LOG_TIMEOUT, TestEnv, wait_until, zombie_exit};

/// Writes the configuration of [`TestEnv::config`] (globals and `bindings`) with mode 0644,
/// as the package installs it, so that the daemon can read it again after the drop.
pub fn readable_config(env: &TestEnv, bindings: &str) -> PathBuf {
    let path = env.config(bindings);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    path
}

/// The `event=reload` lines of `daemon` so far, in order.
fn reload_lines(daemon: &Daemon) -> Vec<Event> {
    daemon.events_of("reload")
}

/// Whether `line` ends a reload: every reload logs exactly one line without `change=` (the
/// outcome), after the lines of the changes it refused.
fn is_outcome(line: &Event) -> bool {
    line.get("change").is_none()
}

/// Sends SIGHUP to `daemon` and returns every `event=reload` line of this reload, the
/// outcome last; panics with the daemon's report when it does not come within
/// [`LOG_TIMEOUT`], or when the daemon dies first (saying how: a seccomp kill is SIGSYS, 31).
pub fn reload(daemon: &Daemon) -> Vec<Event> {
    let before = reload_lines(daemon);
    let done = before.iter().filter(|l| is_outcome(l)).count();
    daemon.signal(Signal::SIGHUP);
    let mut died = None;
    let finished = wait_until(LOG_TIMEOUT, || {
        died = zombie_exit(daemon.pid());
        reload_lines(daemon)
            .iter()
            .filter(|l| is_outcome(l))
            .count()
            > done
            || died.is_some()
    });
    if let Some(how) = died {
        panic!("the daemon {how} during the reload\n{}", daemon.report());
    }
    assert!(
        finished,
        "no outcome of the reload within {LOG_TIMEOUT:?}\n{}",
        daemon.report()
    );
    let lines = reload_lines(daemon).split_off(before.len());
    for line in &lines {
        let errors = line.format_errors();
        assert!(errors.is_empty(), "{errors:?} in {:?}", line.line);
    }
    lines
}

/// The outcome line of a reload (see [`reload`]).
pub fn outcome(lines: &[Event]) -> &Event {
    lines.last().expect("a reload logs its outcome")
}

/// The permission bits of `path`.
pub fn mode_of(path: &std::path::Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The `change=` and `reason=` of each line before the outcome.
pub fn refused(lines: &[Event]) -> Vec<(String, String)> {
    lines[..lines.len() - 1]
        .iter()
        .map(|l| {
            l.assert_fields(&[
                ("event", "reload"),
                ("signal", "SIGHUP"),
                ("result", "refused"),
            ]);
            let field = |k| {
                l.get(k)
                    .unwrap_or_else(|| panic!("no {k}= in {:?}", l.line))
            };
            (field("change").to_owned(), field("reason").to_owned())
        })
        .collect()
}
