//! Hostile floods: vanishing, never-reading and denied peers by the thousand while a
//! legitimate client keeps being granted.
//!
//! Every flood is bounded in time and runs on the test's private loopback and socket
//! directory. The tests assert liveness bounds and that descriptors, memory and the log
//! return to their baseline; the measured rates go to SECURITY.md through
//! `scripts/security-figures`, never into an assertion. (That script and
//! `.config/nextest.toml` pick the floods as `binary(hostile) & test(flood)`.) The other
//! hostile peers, one at a time, are in hostile_peers.rs.

mod adversary;
mod common;

use std::process::Command;
use std::thread;
use std::time::Duration;

use adversary::*;
use common::*;
use serde::Deserialize;
use serde_json::json;

/// How long each flood lasts.
const FLOOD_SECONDS: f64 = 3.0;
/// Flooding processes per flood (the machine has two cores; the daemon has one thread).
const FLOODERS: usize = 2;
/// A resident-memory increase up to this is allocator slack, not a leak (a leak of even
/// 100 bytes per connection would exceed it tenfold over a flood).
const RSS_SLACK_KIB: u64 = 1024;

#[derive(Debug, Deserialize)]
struct FloodReport {
    connections: u64,
    errors: u64,
    seconds: f64,
}

/// Floods the `http` binding with `kind` connections from `user` (`hold`: connections a
/// staller keeps open), a member of the binding's group or not, while measuring a
/// legitimate client's grants (www-data, another uid); asserts that it was
/// granted every time within the liveness bound and that the daemon's descriptors, memory
/// and log went back to or stayed within their baseline; records the figures.
fn flood(env: &TestEnv, daemon: &Daemon, figure: &str, kind: &str, user: User, hold: u32) {
    let socket = env.socket("http");
    // Warm-up and baseline: the same client, unhindered.
    let baseline = measure_latency(env, 1.0, 200);
    if let Err(why) = baseline.check("baseline") {
        panic!("{why}\n{}", daemon.report());
    }
    let fds_before = daemon.fd_count();
    let rss_before = rss_kib(daemon);
    let lines_before = daemon.log_lines().len();

    let flooders: Vec<Proc> = (0..FLOODERS)
        .map(|_| {
            hostile(
                env,
                user,
                &[
                    "flood".as_ref(),
                    kind.as_ref(),
                    socket.as_os_str(),
                    FLOOD_SECONDS.to_string().as_ref(),
                    hold.to_string().as_ref(),
                ],
            )
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    let during = measure_latency(env, FLOOD_SECONDS - 0.6, 1000);
    let reports: Vec<FloodReport> = flooders
        .into_iter()
        .map(|f| {
            let outcome = f.finish(EXIT_TIMEOUT);
            outcome.assert_success();
            last_json(&outcome)
        })
        .collect();
    if let Err(why) = during.check(&format!("during the {kind} flood")) {
        panic!("{why}\n{reports:?}\n{}", daemon.report());
    }

    // Once a last grant came through, the flood's backlog ahead of it is drained, and every
    // connection's descriptor must be gone.
    env.probe(WWW_DATA, &socket).assert_granted(2);
    daemon.wait_fd_count(fds_before);
    let rss_after = rss_kib(daemon);
    assert!(
        rss_after <= rss_before + RSS_SLACK_KIB,
        "VmRSS grew from {rss_before} to {rss_after} KiB over the {kind} flood\n{}",
        daemon.report()
    );
    let connections: u64 = reports.iter().map(|r| r.connections).sum();
    let errors: u64 = reports.iter().map(|r| r.errors).sum();
    let seconds = reports.iter().map(|r| r.seconds).fold(0.0, f64::max);
    assert!(
        connections >= 1000,
        "the {kind} flood made only {connections} connections: {reports:?}"
    );
    // Rate limiting: at most 20 lines per (kind, binding, uid) in a 10 s window, which is
    // longer than the flood; the flood (another uid) and the legitimate client are two keys.
    let lines = daemon.log_lines().len() - lines_before;
    assert!(
        lines <= 2 * 20,
        "{lines} log lines during a {connections}-connection {kind} flood\n{}",
        daemon.report()
    );
    record(
        figure,
        json!({
            "kind": kind,
            "connections": connections,
            "errors": errors,
            "seconds": seconds,
            "rate": connections as f64 / seconds,
            "baseline": {"p50_us": baseline.p50_us, "p99_us": baseline.p99_us},
            "during": {"p50_us": during.p50_us, "p99_us": during.p99_us, "max_us": during.max_us,
                       "grants": during.granted},
            "fds": [fds_before, fds_before],
            "rss_kib": [rss_before, rss_after],
            "log_lines": lines,
        }),
    );
}

#[test]
fn vanishing_flood_leaves_grants_prompt_and_resources_at_baseline() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(OPEN_HTTP));
    flood(
        &env,
        &daemon,
        "flood-vanish",
        "vanish",
        DAEMON_IN_WWW_DATA,
        0,
    );
}

#[test]
fn denied_flood_leaves_grants_prompt_and_the_log_bounded() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(OPEN_HTTP));
    flood(&env, &daemon, "flood-deny", "fetch", NOBODY, 0);
    daemon.wait_event("deny", &[("uid", "65534")]);
}

/// Clients that never read keep the grant's sockets in flight, which the kernel charges to
/// the daemon's user up to its soft RLIMIT_NOFILE. Started with systemd's default soft limit
/// (1024), the daemon raises it to the hard limit, so 2000 unread grants (4000 sockets in
/// flight) do not make the next grant fail with ETOOMANYREFS.
#[test]
fn never_reading_flood_cannot_exhaust_the_in_flight_budget() {
    const HOLD: u32 = 1000;
    let env = TestEnv::new();
    let config = env.config(OPEN_HTTP);
    let mut prlimit = Command::new("prlimit");
    prlimit.args(["--nofile=1024:", "--"]);
    let daemon = Daemon::spawn(serve_under(prlimit, &config));
    let (soft, hard) = nofile_limits(daemon.pid());
    assert_eq!(
        soft, hard,
        "the daemon keeps a soft RLIMIT_NOFILE below the hard one"
    );
    let hard: u64 = hard.parse().unwrap_or(u64::MAX);
    let in_flight = 2 * FLOODERS as u64 * u64::from(HOLD);
    assert!(
        hard > in_flight + 64,
        "this test needs a hard RLIMIT_NOFILE above {} (systemd gives 524288), not {hard}",
        in_flight + 64
    );
    flood(
        &env,
        &daemon,
        "flood-stall",
        "stall",
        DAEMON_IN_WWW_DATA,
        HOLD,
    );
}
