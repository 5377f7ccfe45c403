//! The daemon under a real supervisor from Debian's packages, s6-supervise (package s6),
//! running the service directory shipped in packaging/s6/: killed with SIGKILL, it is started
//! again by s6-supervise and recovers the very socket from the apps serving on it, which new
//! apps then fetch, with no failed request over the whole run.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::load::{Load, http_answered_by};
use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A copy of packaging/s6/portbinder supervised by s6-supervise; brought down (s6-svc -xd)
/// and waited for on drop.
struct Supervised {
    dir: PathBuf,
    supervise: Option<Proc>,
}

impl Supervised {
    /// Copies the shipped service directory into the test's and starts s6-supervise on it,
    /// with the binary under test first in PATH and PORTBINDER_CONFIG pointing at `config`.
    fn start(env: &TestEnv, config: &Path) -> Supervised {
        let dir = env.path().join("sv/portbinder");
        fs::create_dir_all(&dir).unwrap();
        let run = dir.join("run");
        fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/s6/portbinder/run"),
            &run,
        )
        .unwrap();
        fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
        let bin_dir = binary().parent().unwrap().to_owned();
        let mut cmd = Command::new("s6-supervise");
        cmd.arg(&dir)
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
            .env("PORTBINDER_CONFIG", config);
        let supervise = Proc::spawn(cmd, "s6-supervise");
        Supervised {
            dir,
            supervise: Some(supervise),
        }
    }

    /// The daemon's pid as s6-svstat reports it (`None` while it is down).
    fn pid(&self) -> Option<u32> {
        let out = Command::new("s6-svstat")
            .args(["-o", "pid"])
            .arg(&self.dir)
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }

    /// Waits until a daemon other than `not` runs and has logged `event=ready` (after syslog
    /// offset `since`); returns its pid.
    fn wait_ready(&self, since: u64, not: Option<u32>) -> u32 {
        let mut ready = None;
        let ok = wait_until(STARTUP_TIMEOUT, || {
            ready = self
                .pid()
                .filter(|&pid| Some(pid) != not && !events(since, pid, "ready").is_empty());
            ready.is_some()
        });
        assert!(
            ok,
            "no ready daemon under s6-supervise (pid now {:?})\n{}",
            self.pid(),
            self.supervise.as_ref().unwrap().report()
        );
        ready.unwrap()
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        let _ = Command::new("s6-svc").arg("-xd").arg(&self.dir).status();
        if let Some(mut supervise) = self.supervise.take() {
            supervise.wait_timeout(EXIT_TIMEOUT);
        }
    }
}

/// The audit events `kind` that daemon `pid` logged after syslog offset `since`.
fn events(since: u64, pid: u32, kind: &str) -> Vec<Event> {
    let tag = format!("portbinder[{pid}]: ");
    syslog_lines_since(since)
        .iter()
        .filter(|l| l.contains(&tag))
        .map(|l| Event::parse(l))
        .filter(|e| e.kind() == kind)
        .collect()
}

#[test]
fn s6_supervise_restarts_the_killed_daemon_which_recovers_the_apps_socket() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    let since = syslog_offset();
    let supervised = Supervised::start(&env, &config);
    let first = supervised.wait_ready(since, None);
    let old_app = env.serving_app(WWW_DATA, "serve-http", "http");
    let inode = env.probe(WWW_DATA, &env.socket("http")).inodes()[0];
    assert!(socket_inodes(old_app.pid()).contains(&inode));

    let load = Load::http("127.0.0.1:80");
    load.wait_for(50);
    kill(Pid::from_raw(first as i32), Signal::SIGKILL).unwrap();
    let second = supervised.wait_ready(since, Some(first));
    load.wait_for(50);

    let recovered = events(since, second, "recovered");
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    recovered[0].assert_fields(&[
        ("binding", "http"),
        ("inode", &inode.to_string()),
        ("rule", "granted"),
        ("pid", &old_app.pid().to_string()),
        ("uid", "33"),
    ]);
    assert_eq!(env.probe(WWW_DATA, &env.socket("http")).inodes(), [inode]);
    let new_app = env.serving_app(DAEMON_IN_WWW_DATA, "serve-http", "http");
    load.wait_for(50);
    let (ok, failed) = load.finish();
    assert_eq!(failed, 0, "{ok} requests answered, {failed} failed");
    drop(old_app);
    assert_eq!(http_answered_by("127.0.0.1:80".parse().unwrap()), Some(1));
    assert!(socket_inodes(new_app.pid()).contains(&inode));
}
