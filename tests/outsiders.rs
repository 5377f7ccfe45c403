//! What a local user outside every binding can do to the daemon: nothing that stops it
//! starting, and nothing that forges its audit trail (issue 10, items 1, 5 and the socket
//! directory's ancestors of item 6).

mod adversary;
mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::process::Command;

use adversary::*;
use common::*;

/// A Python loop, run as an outsider, that opens and flock()s every new inode that appears
/// at the directory path argv[1] (as fast as it can, for at most argv[2] seconds), tries to
/// open the daemon's lock file inside it as well, and prints one line per inode it locked:
/// `locked INO lockfile=opened|ERRNO`.
const LOCK_SQUATTER: &str = r#"
import errno, fcntl, os, sys, time
path, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
held, seen = [], None
while time.monotonic() < deadline:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        time.sleep(0.001)
        continue
    ino = os.fstat(fd).st_ino
    if ino == seen:
        os.close(fd)
        time.sleep(0.001)
        continue
    seen = ino
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    held.append(fd)
    try:
        lock = os.open(os.path.join(path, ".portbinder.lock"), os.O_RDONLY)
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.append(lock)
        state = "opened"
    except OSError as e:
        state = errno.errorcode.get(e.errno, str(e.errno))
    print("locked", ino, "lockfile=" + state, flush=True)
"#;

/// Starts the lock squatter as uid 1 (`daemon`, in no group of the bindings) on `dir`.
fn squatter(env: &TestEnv, dir: &std::path::Path) -> Proc {
    let script = env.path().join("squatter.py");
    fs::write(&script, LOCK_SQUATTER).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(&script).arg(dir).arg("120");
    DAEMON.apply(&mut cmd);
    Proc::spawn(cmd, "lock squatter as daemon")
}

/// Creates the socket directory as systemd's RuntimeDirectory= does before each start:
/// fresh, 0755, owned by the run user (nobody).
fn fresh_runtime_dir(env: &TestEnv) {
    let _ = fs::remove_dir_all(env.socket_dir());
    env.create_socket_dir_for_nobody();
}

#[test]
fn an_outsider_holding_a_lock_on_the_socket_directory_does_not_stop_the_daemon() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    let mut squatter = squatter(&env, &env.socket_dir());
    // Five starts, each on a fresh directory that the outsider has locked (and whose lock
    // file it has tried to open) before the daemon even starts.
    for round in 0..5 {
        fresh_runtime_dir(&env);
        let line = squatter.next_line(EXIT_TIMEOUT);
        assert!(line.starts_with("locked "), "round {round}: {line}");
        let mut daemon = env.serve(&config);
        env.probe(WWW_DATA, &env.socket("http")).assert_granted(1);
        // The outsider can open the directory, never the lock file the daemon holds.
        let lockfile = env.socket_dir().join(".portbinder.lock");
        let meta = fs::symlink_metadata(&lockfile).expect("the daemon's lock file");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "round {round}");
        daemon.stop();
    }
    squatter.signal(nix::sys::signal::Signal::SIGKILL);
    // Every lock file the squatter saw appeared only after it had locked the directory, so
    // it printed `lockfile=ENOENT`; never `opened`.
    assert!(
        !squatter.stdout().contains("lockfile=opened"),
        "{}",
        squatter.stdout()
    );
}

#[test]
fn an_outsider_cannot_open_the_lock_of_a_running_daemon() {
    let env = TestEnv::new();
    let _daemon = env.serve(&env.config(HTTP_BINDING));
    // The directory is squatted after the daemon took its lock: the lock file exists now.
    let mut squatter = squatter(&env, &env.socket_dir());
    let line = squatter.next_line(EXIT_TIMEOUT);
    assert!(line.ends_with("lockfile=EACCES"), "{line}");
    // And a second daemon on the same directory is still refused (the lock is real).
    let other = env.path().join("other.toml");
    fs::write(
        &other,
        format!(
            "{}\n[binding.http]\nlisten = [\"127.0.0.1:8080\"]\ngroup = \"www-data\"\n",
            env.globals()
        ),
    )
    .unwrap();
    fs::set_permissions(&other, fs::Permissions::from_mode(0o600)).unwrap();
    serve_expect_failure(&other).assert_error(4, &["in use by another portbinder"]);
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(1);
}

/// What `hostile.py name` reports.
#[derive(serde::Deserialize)]
struct Named {
    pid: u32,
    granted: bool,
}

/// Splits an audit line the naive way (whitespace, then the first `=`) and returns the keys.
fn naive_keys(body: &str) -> Vec<&str> {
    body.split_whitespace()
        .filter_map(|token| token.split_once('=').map(|(k, _)| k))
        .collect()
}

#[test]
fn a_hostile_process_name_forges_no_field_for_naive_parsers() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(OPEN_HTTP));
    let socket = env.socket("http");
    // 15 bytes, all kept by the kernel: what a denied uid 1 would like the log to say.
    for name in ["x uid=33 user=w", "a event=grant b", "\"q\" uid=0 ok"] {
        let hexname: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        let outcome = hostile(&env, DAEMON, &["name", &hexname, socket.to_str().unwrap()])
            .finish(EXIT_TIMEOUT);
        outcome.assert_success();
        let named: Named = last_json(&outcome);
        assert!(!named.granted);
        let line = daemon.wait_event("deny", &[("pid", &named.pid.to_string())]);
        let keys = naive_keys(&line.body);
        for key in ["event", "uid", "user", "gid", "pid", "comm"] {
            let count = keys.iter().filter(|k| **k == key).count();
            assert_eq!(count, 1, "`{key}` {count} times in {}", line.body);
        }
        // The regex an operator would write reads the real uid.
        let after = line.body.rsplit(" uid=").next().unwrap();
        assert!(after.starts_with("1 "), "{}", line.body);
        assert_eq!(line.format_errors(), Vec::<String>::new(), "{}", line.body);
    }
}

#[test]
fn a_socket_dir_below_a_directory_others_can_write_is_refused() {
    let env = TestEnv::new();
    // Owned by uid 1, and root's but group-writable: either lets someone else replace the
    // socket directory while the daemon serves.
    let cases = [
        ("owned", 1, 0o755, "owned by uid 1"),
        ("groupw", 0, 0o775, "mode 0775"),
    ];
    for (name, owner, mode, problem) in cases {
        let parent = env.path().join(name);
        fs::create_dir(&parent).unwrap();
        chown(&parent, Some(owner), Some(0)).unwrap();
        fs::set_permissions(&parent, fs::Permissions::from_mode(mode)).unwrap();
        let socket_dir = parent.join("run");
        let config = env.write_config(&format!(
            "user = \"nobody\"\nsocket_dir = \"{}\"\nlog = \"stderr\"\n{HTTP_BINDING}",
            socket_dir.display()
        ));
        serve_expect_failure(&config).assert_error(
            4,
            &[
                parent.to_str().unwrap(),
                problem,
                "could replace the socket directory",
            ],
        );
        assert!(!socket_dir.exists(), "{name}: nothing created below it");
    }
}
