//! Unread grants (issue 10, item 4). The sockets of a grant that its client has not read are
//! in flight, and the kernel charges every socket in flight to the daemon's user, up to that
//! user's RLIMIT_NOFILE, whichever binding it belongs to. The daemon keeps its end of a
//! granted connection until the answer has been read and caps what one uid, and one binding,
//! may hold unread: beyond the cap a member is denied with a reason, while other members and
//! the members of other bindings are still served, and everything is released when the
//! holders close.

mod common;

use std::process::Command;

use common::uidflood::{self, Held};
use common::*;

const BINDINGS: &str = r#"
[binding.http]
listen = ["127.0.0.1:80", "[::1]:80"]
group = "www-data"

[binding.dns]
listen = ["udp://127.0.0.1:53"]
group = "daemon"
"#;

/// The daemon's descriptor limit, soft and hard (so it cannot raise it): the kernel's budget
/// of sockets in flight for the daemon's user.
const NOFILE: u32 = 1024;

/// Starts the daemon as `user` with [`NOFILE`]. The user is one that no other test runs a
/// daemon as, so that no other test's grants in flight count against this budget.
fn start(env: &TestEnv, user: &str) -> Daemon {
    let globals = env
        .globals()
        .replace("user = \"nobody\"", &format!("user = \"{user}\""));
    let config = env.write_config(&format!("{globals}{BINDINGS}"));
    let mut prlimit = Command::new("prlimit");
    prlimit.arg(format!("--nofile={NOFILE}:{NOFILE}")).arg("--");
    Daemon::spawn(serve_under(prlimit, &config))
}

/// Waits for the helper's report: every connection made and answered.
fn held(flood: &mut Proc, connections: u64, daemon: &Daemon) -> Held {
    let line = flood.next_line(EXIT_TIMEOUT);
    let held: Held = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("bad report from uidflood ({e}): {line:?}"));
    assert_eq!(
        (held.connections, held.unanswered),
        (connections, 0),
        "{held:?}\n{}",
        daemon.report()
    );
    held
}

/// Asserts that the cap on unread grants stopped `held` short of the descriptor limit: some
/// connections were denied, and the granted ones' sockets in flight stayed below [`NOFILE`].
fn capped(held: &Held, daemon: &Daemon) {
    assert!(held.denied > 0, "{held:?}\n{}", daemon.report());
    assert!(
        2 * held.granted < u64::from(NOFILE),
        "{held:?}\n{}",
        daemon.report()
    );
}

/// A deny line for `binding` whose reason says the grants are unread.
fn unread_denial(daemon: &Daemon, binding: &str) -> Event {
    let deny = daemon.wait_event("deny", &[("binding", binding)]);
    let reason = deny.get("reason").unwrap_or_default();
    assert!(
        reason.contains("unread"),
        "the denial does not say why: {}\n{}",
        deny.line,
        daemon.report()
    );
    deny
}

#[test]
fn one_uid_holding_unread_grants_leaves_everyone_else_served() {
    let env = TestEnv::new();
    let daemon = start(&env, "uucp");
    let http = env.socket("http");
    let baseline = daemon.fd_count();

    // www-data keeps 700 answers unread: as grants, 1,400 sockets, more than the whole budget.
    let mut flood = uidflood::hold(&env, &http, 33, 33, 1, 700);
    let held = held(&mut flood, 700, &daemon);
    // Another member of the same binding, and a member of another binding, are served.
    env.probe(DAEMON_IN_WWW_DATA, &http).assert_granted(2);
    env.probe(DAEMON, &env.socket("dns")).assert_granted(1);
    // The holder was stopped with a reason, and what it holds is within the budget.
    capped(&held, &daemon);
    let deny = unread_denial(&daemon, "http");
    assert_eq!(deny.get("uid"), Some("33"), "{}", deny.line);

    // Once the holder closes, its grants are released and it is served again.
    drop(flood);
    daemon.wait_fd_count(baseline);
    env.probe(WWW_DATA, &http).assert_granted(2);
}

#[test]
fn one_bindings_members_cannot_use_up_another_bindings_share() {
    let env = TestEnv::new();
    let daemon = start(&env, "proxy");
    let http = env.socket("http");
    let baseline = daemon.fd_count();

    // 12 uids in http's group keep 120 answers each unread: 1,440 grants, 2,880 sockets.
    let mut flood = uidflood::hold(&env, &http, 33, 300_000, 12, 120);
    let held = held(&mut flood, 1440, &daemon);
    // dns's member is served whatever http's members hold.
    env.probe(DAEMON, &env.socket("dns")).assert_granted(1);
    capped(&held, &daemon);
    unread_denial(&daemon, "http");

    drop(flood);
    daemon.wait_fd_count(baseline);
    env.probe(WWW_DATA, &http).assert_granted(2);
}

#[test]
fn a_client_that_shuts_its_end_down_still_counts_its_unread_grants() {
    let env = TestEnv::new();
    let daemon = start(&env, "news");
    let http = env.socket("http");
    // www-data shuts each connection down for writing and never reads: the daemon's end
    // reports a hang-up, yet the grants are unread and their sockets in flight.
    let mut flood = uidflood::hold_shut(&env, &http, 33, 33, 1, 700);
    let held = held(&mut flood, 700, &daemon);
    env.probe(DAEMON, &env.socket("dns")).assert_granted(1);
    capped(&held, &daemon);
    unread_denial(&daemon, "http");
}
