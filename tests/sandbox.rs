//! The serving daemon in its sandbox: it is under seccomp (Seccomp: 2) and Landlock and says
//! so; glibc's syslog reconnect and the clean stop work inside it, and a socket directory
//! swapped for a symlink is not followed at stop.
//!
//! The filter and the ruleset themselves are checked system call by system call in
//! sandbox_seccomp.rs and sandbox_landlock.rs.

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown, symlink};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn the_serving_daemon_is_under_seccomp_and_landlock_and_says_so() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(HTTP_BINDING));
    let status = daemon.proc_status();
    assert_eq!(
        status.get("Seccomp").map(String::as_str),
        Some("2"),
        "{status:?}"
    );
    assert_eq!(status.get("Seccomp_filters").map(String::as_str), Some("1"));
    assert_eq!(status.get("NoNewPrivs").map(String::as_str), Some("1"));

    let abi = kernel_landlock_abi();
    let (landlock, shown_abi) = match abi {
        0 => ("none", 0),
        1..=9 => ("partial", abi),
        _ => ("full", 10),
    };
    daemon
        .wait_event("drop", &[("result", "verified")])
        .assert_fields(&[
            ("no_new_privs", "1"),
            ("seccomp", "kill-process"),
            ("landlock", landlock),
            ("landlock_abi", &shown_abi.to_string()),
        ]);
    // And it serves under them.
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(1);
}

/// Receives syslog datagrams on `socket` until one contains `pattern` (bounded).
fn wait_datagram(socket: &UnixDatagram, pattern: &str) -> String {
    let deadline = Instant::now() + LOG_TIMEOUT;
    let mut buf = vec![0u8; 8192];
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let line = String::from_utf8_lossy(&buf[..n]).into_owned();
            if line.contains(pattern) {
                return line;
            }
            seen.push(line);
        }
    }
    panic!("no datagram containing {pattern:?} within {LOG_TIMEOUT:?}; got {seen:#?}");
}

/// A syslog socket at `path` that the daemon (user nobody) may send to.
fn log_socket(path: &Path) -> UnixDatagram {
    let socket = UnixDatagram::bind(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o666)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    socket
}

/// The syslog daemon restarts (its /dev/log is replaced by a new socket) under a serving
/// daemon: glibc's syslog reconnects from inside the sandbox (socket, connect, sendto are
/// allowed; Landlock ABI 9+ allows connecting in the log socket's directory), and the next
/// lines arrive at the new socket.
#[test]
fn syslog_reconnects_from_inside_the_sandbox() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    let dev: PathBuf = env.path().join("dev");
    fs::create_dir(&dev).unwrap();
    fs::set_permissions(&dev, fs::Permissions::from_mode(0o755)).unwrap();
    let log_path = dev.join("log");
    let first = log_socket(&log_path);

    // The daemon sees the test's directory as /dev, in a mount namespace of its own.
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
        .arg(r#"mount --bind "$0" /dev && exec "$@""#)
        .arg(&dev);
    let cmd = serve_under(cmd, &config);
    let mut daemon = Proc::spawn(cmd, "portbinder serve with a private /dev/log");
    wait_datagram(&first, "event=ready");
    let before = env.probe(WWW_DATA, &env.socket("http"));
    before.assert_granted(1);
    wait_datagram(
        &first,
        &format!("event=grant binding=http fds=1 pid={} ", before.pid),
    );

    drop(first);
    fs::remove_file(&log_path).unwrap();
    let second = log_socket(&log_path);
    let after = env.probe(WWW_DATA, &env.socket("http"));
    after.assert_granted(1);
    wait_datagram(
        &second,
        &format!("event=grant binding=http fds=1 pid={} ", after.pid),
    );

    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    wait_datagram(&second, "event=stop signal=SIGTERM grants=2");
    let status = daemon.wait_timeout(EXIT_TIMEOUT).expect("daemon stops");
    assert_eq!(status.code(), Some(0), "{}", daemon.report());
}

/// Whoever can write the socket directory's parent swaps the directory for a symlink to
/// another directory while the daemon serves: at stop, removing `<dir>/http.sock` would
/// follow the link, but Landlock allows removing files only beneath the directory the
/// daemon checked at start-up, so the other directory's file survives.
#[test]
fn a_socket_dir_swapped_for_a_symlink_is_not_followed_at_stop() {
    assert!(
        kernel_landlock_abi() >= 1,
        "this test needs a kernel with Landlock (5.13+, enabled in the LSM list)"
    );
    let env = TestEnv::new();
    let mut daemon = env.serve(&env.config(HTTP_BINDING));
    let victim = env.path().join("victim");
    fs::create_dir(&victim).unwrap();
    chown(&victim, Some(65534), Some(65534)).unwrap();
    let bait = victim.join("http.sock");
    fs::write(&bait, "someone else's file\n").unwrap();
    chown(&bait, Some(65534), Some(65534)).unwrap();
    fs::rename(env.socket_dir(), env.path().join("run.old")).unwrap();
    symlink(&victim, env.socket_dir()).unwrap();

    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.report());
    assert!(
        bait.exists(),
        "the daemon removed a file through the swapped-in symlink"
    );
}
