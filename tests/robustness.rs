//! Robustness: no fd leaks over many grants, slow or vanishing clients do not block or kill
//! the daemon, and running out of fds neither busy-loops nor drops waiting clients.

mod adversary;
mod common;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn ten_thousand_grants_leak_no_fd() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(DUAL_STACK_HTTP));
    let baseline = daemon.fd_count();

    let socket = env.socket("http");
    let grants = env.fetch_many(WWW_DATA, &socket, 10_000);
    assert_eq!((grants.granted, grants.denied), (10_000, 0), "{grants:?}");
    daemon.wait_fd_count(baseline);
}

#[test]
fn stalled_clients_do_not_delay_the_next_one() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(DUAL_STACK_HTTP));
    let baseline = daemon.fd_count();
    let socket = env.socket("http");

    let mut stall = env.client(
        WWW_DATA,
        &[
            "stall".as_ref(),
            socket.as_os_str(),
            "200".as_ref(),
            "60".as_ref(),
        ],
    );
    stall.expect_line("stalled", EXIT_TIMEOUT);

    // The bound is only a liveness limit: a daemon waiting on the stalled peers would hang
    // until they go away (60 s).
    let started = Instant::now();
    env.probe(WWW_DATA, &socket).assert_granted(2);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "grant took {:?} behind 200 stalled clients",
        started.elapsed()
    );
    drop(stall);
    daemon.wait_fd_count(baseline);
}

#[test]
fn vanishing_clients_do_not_kill_the_daemon() {
    let env = TestEnv::new();
    let mut daemon = env.serve(&env.config(DUAL_STACK_HTTP));
    let baseline = daemon.fd_count();
    let socket = env.socket("http");

    env.client(
        WWW_DATA,
        &["vanish".as_ref(), socket.as_os_str(), "100".as_ref()],
    )
    .finish(EXIT_TIMEOUT)
    .assert_success();

    env.probe(WWW_DATA, &socket).assert_granted(2);
    assert!(daemon.is_running(), "{}", daemon.report());
    daemon.wait_fd_count(baseline);
}

/// Connections waiting in the accept queue of the daemon's listening Unix socket `name`
/// (its Recv-Q in `ss -xl`). `ss` shows the path the socket was bound at, inside the
/// daemon's staging directory, so only the file name is matched; the test's network
/// namespace holds no other daemon.
fn pending_connections(name: &str) -> u32 {
    let out = Command::new("ss")
        .args(["-Hxl"])
        .output()
        .expect("run ss (iproute2)");
    let listing = String::from_utf8_lossy(&out.stdout);
    let file = format!("/{name} ");
    let line = listing
        .lines()
        .find(|l| l.contains(&file))
        .unwrap_or_else(|| panic!("no listening socket {name} in:\n{listing}"));
    // Netid State Recv-Q Send-Q Local-Address ...
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// `prlimit --pid PID --nofile=SOFT:HARD`, run as the daemon's user (nobody): root may lack
/// CAP_SYS_RESOURCE (it does in some sandboxes), and a process whose uids and gids all match
/// the target's may change its limits without it.
fn set_nofile(pid: u32, soft: u64, hard: &str) {
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--pid={pid}"))
        .arg(format!("--nofile={soft}:{hard}"));
    NOBODY.apply(&mut cmd);
    let out = cmd.output().expect("run prlimit (util-linux)");
    assert!(
        out.status.success(),
        "prlimit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn fd_exhaustion_waits_without_spinning_and_recovers() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(DUAL_STACK_HTTP));
    let pid = daemon.pid();
    let baseline = daemon.fd_count();
    let (soft, hard) = nofile_limits(pid);

    // With the limit at the lowest free fd number, no new fd can be allocated (that is the
    // fd count itself when the daemon's fds are numbered without gaps).
    let fds = proc_fds(pid);
    let lowest_free = (0..).find(|fd| !fds.contains(fd)).unwrap();
    set_nofile(pid, lowest_free as u64, &hard);

    let socket = env.socket("http");
    let mut waiting = env.client(WWW_DATA, &["probe".as_ref(), socket.as_os_str()]);
    let queued = wait_until(EXIT_TIMEOUT, || pending_connections("http.sock") > 0);
    assert!(
        queued,
        "the client never connected
{}",
        waiting.report()
    );
    let ticks_before = daemon.cpu_ticks();
    thread::sleep(Duration::from_secs(1));
    let spent = daemon.cpu_ticks() - ticks_before;
    assert!(
        spent < 30,
        "daemon used {spent} clock ticks in 1 s while out of fds (busy loop?)\n{}",
        daemon.report()
    );
    assert!(
        waiting.try_status().is_none(),
        "client was answered while the daemon could not accept:\n{}",
        waiting.report()
    );

    set_nofile(pid, soft.parse().unwrap(), &hard);
    let probe: Probe = waiting.finish(EXIT_TIMEOUT).json();
    probe.assert_granted(2);
    daemon.wait_fd_count(baseline);
    let ticks_per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100);
    adversary::record(
        "exhaustion-emfile",
        serde_json::json!({"cpu_percent": spent as f64 * 100.0 / ticks_per_second as f64}),
    );
}
