//! What the hostile, fault and robustness tests share: the hostile client
//! (`clients/hostile.py`), measurements of the daemon (latency of legitimate grants, memory),
//! and the figures that `scripts/security-figures` collects into SECURITY.md.
//!
//! Figures are written only when `PORTBINDER_FIGURES` names a file: each measuring test then
//! appends one JSON object per line. Tests assert liveness bounds and resource baselines,
//! never speeds; the figures are reported, not checked.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use crate::common::*;

const HOSTILE_PY: &str = include_str!("../clients/hostile.py");

/// The longest a legitimate grant may take while the daemon is under attack. A liveness
/// bound only: a stalled or dead daemon exceeds it by far, a slow machine does not.
pub const GRANT_LIVENESS: Duration = Duration::from_secs(5);

/// Writes hostile.py into the test directory (once) and returns a command running it.
pub fn hostile_command<S: AsRef<OsStr>>(env: &TestEnv, user: User, args: &[S]) -> Command {
    let script = env.path().join("hostile.py");
    if !script.exists() {
        fs::write(&script, HOSTILE_PY).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    }
    env.python_command(user, &script, args)
}

/// Spawns `hostile.py args...` as `user`.
pub fn hostile<S: AsRef<OsStr>>(env: &TestEnv, user: User, args: &[S]) -> Proc {
    Proc::spawn(
        hostile_command(env, user, args),
        &format!("hostile.py {:?} as {}", args[0].as_ref(), user.name),
    )
}

/// The last stdout line of a finished client, parsed as JSON, whatever its exit status
/// (a client that kills itself still printed what the test needs).
pub fn last_json<T: for<'de> Deserialize<'de>>(outcome: &Outcome) -> T {
    let line = outcome.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("bad JSON from client ({e}): {line:?}\n{outcome}"))
}

/// What `hostile.py latency` reports.
#[derive(Debug, Deserialize, Clone)]
pub struct Latency {
    /// Fetches answered with a grant.
    pub granted: u64,
    /// Fetches answered with a denial.
    pub denied: u64,
    /// Fetches that got no answer.
    pub failed: u64,
    /// Fetches timed.
    pub samples: u64,
    /// Median fetch time, microseconds.
    pub p50_us: u64,
    /// 99th percentile, microseconds.
    pub p99_us: u64,
    /// Slowest, microseconds.
    pub max_us: u64,
    /// Why fetches failed: error message and count.
    pub errors: std::collections::BTreeMap<String, u64>,
}

impl Latency {
    /// Whether every fetch was granted and none took longer than [`GRANT_LIVENESS`]; `Err`
    /// says what went wrong.
    pub fn check(&self, what: &str) -> Result<(), String> {
        if self.samples == 0 || self.granted != self.samples || self.denied + self.failed != 0 {
            return Err(format!(
                "{what}: not every legitimate fetch was granted: {self:?}"
            ));
        }
        if Duration::from_micros(self.max_us) >= GRANT_LIVENESS {
            return Err(format!(
                "{what}: a legitimate grant took {} ms: {self:?}",
                self.max_us / 1000
            ));
        }
        Ok(())
    }
}

/// Runs `hostile.py latency` as www-data for `seconds` (at most `most` fetches).
pub fn measure_latency(env: &TestEnv, seconds: f64, most: u32) -> Latency {
    let socket = env.socket("http");
    let outcome = hostile(
        env,
        WWW_DATA,
        &[
            "latency".as_ref(),
            socket.as_os_str(),
            seconds.to_string().as_ref(),
            most.to_string().as_ref(),
        ],
    )
    .finish(EXIT_TIMEOUT);
    outcome.assert_success();
    last_json(&outcome)
}

/// The daemon's resident memory (VmRSS), KiB.
pub fn rss_kib(daemon: &Daemon) -> u64 {
    let status = daemon.proc_status();
    let value = status.get("VmRSS").expect("VmRSS in /proc/PID/status");
    value
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("VmRSS {value:?}: {e}"))
}

/// Appends one figure (a JSON object with a `figure` name) to `$PORTBINDER_FIGURES`, if set.
pub fn record(figure: &str, mut fields: serde_json::Value) {
    let Some(path) = std::env::var_os("PORTBINDER_FIGURES") else {
        return;
    };
    fields["figure"] = serde_json::Value::from(figure);
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.to_string_lossy()));
    writeln!(file, "{fields}").unwrap();
}
