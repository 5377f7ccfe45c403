//! Restarts with no service manager to keep the sockets: the daemon binds its ports itself,
//! apps serve on them under load, the daemon is killed with SIGKILL and started again by
//! hand. The new daemon recovers the very sockets from the apps that hold them (same inode),
//! new apps fetch them, and no request fails over the whole run. Also: on which ports a
//! socket is recovered when a process outside the binding holds it too, and what the audit
//! line says.

mod common;

use std::path::Path;

use common::load::{Load, http_answered_by};
use common::sockopts::listen_backlog;
use common::*;
use nix::sys::signal::Signal;

fn probe_inodes(env: &TestEnv, name: &str) -> Vec<u64> {
    env.probe(WWW_DATA, &env.socket(name)).inodes()
}

/// The whole run of one binding: daemon, app, load, kill -9, restart by hand, a new app as
/// `daemon` (uid 1, in www-data), then the old app gone. Returns the restarted daemon and the
/// load's (answered, failed) and the old app's pid, after checking the recovered socket is
/// the apps' own.
fn kill_9_and_restart_under_load(
    env: &TestEnv,
    config: &Path,
    name: &str,
    mode: &str,
    load: impl FnOnce() -> Load,
) -> (Daemon, Proc, (u64, u64), u32) {
    let mut first = env.serve(config);
    let old_app = env.serving_app(WWW_DATA, mode, name);
    let before = probe_inodes(env, name);
    assert!(
        socket_inodes(old_app.pid()).contains(&before[0]),
        "the app holds the binding's first socket"
    );
    let load = load();
    load.wait_for(50);
    first.stop_with(Signal::SIGKILL);
    load.wait_for(50);

    let second = env.serve(config);
    let after = probe_inodes(env, name);
    assert_eq!(
        after[0], before[0],
        "the restarted daemon hands out the socket the app holds"
    );
    let new_app = env.serving_app(DAEMON_IN_WWW_DATA, mode, name);
    load.wait_for(50);
    let counts = load.finish();
    let old_pid = old_app.pid();
    drop(old_app);
    assert!(
        socket_inodes(new_app.pid()).contains(&before[0]),
        "the new app holds the recovered socket"
    );
    (second, new_app, counts, old_pid)
}

#[test]
fn kill_9_and_a_restart_by_hand_recover_the_tcp_socket_with_no_failed_request() {
    let env = TestEnv::new();
    let config = env.config(DUAL_STACK_HTTP);
    let (second, _new_app, (ok, failed), old_pid) =
        kill_9_and_restart_under_load(&env, &config, "http", "serve-http", || {
            Load::http("127.0.0.1:80")
        });
    assert_eq!(failed, 0, "requests failed across the kill and the restart");
    // The old app is gone: the new one answers alone, on the recovered socket.
    assert_eq!(http_answered_by("127.0.0.1:80".parse().unwrap()), Some(1));

    let recovered = second.wait_event("recovered", &[("binding", "http")]);
    recovered.assert_fields(&[
        ("listen", "tcp://127.0.0.1:80"),
        ("rule", "granted"),
        ("holders", "1"),
        ("ungranted", "0"),
        ("uid", "33"),
        ("gid", "33"),
        ("comm", "python3"),
    ]);
    assert_eq!(recovered.severity, "info");
    assert!(recovered.format_errors().is_empty(), "{}", recovered.line);
    assert_eq!(
        recovered.number("pid"),
        u64::from(old_pid),
        "{}",
        recovered.line
    );
    // The app had closed its IPv6 socket (serve-http keeps the first): nobody held [::1]:80,
    // so it was bound afresh.
    assert_eq!(second.events_of("recovered").len(), 1);
    second
        .wait_event("start", &[("binding", "http")])
        .assert_fields(&[("adopted", "0"), ("recovered", "1")]);
    assert!(ok > 150, "{ok} requests answered");
}

#[test]
fn kill_9_and_a_restart_by_hand_recover_the_udp_socket_with_no_lost_datagram() {
    let env = TestEnv::new();
    let config = env.config(DNS_BINDING);
    let (second, _new_app, (ok, failed), _) =
        kill_9_and_restart_under_load(&env, &config, "dns", "udp-echo", || {
            Load::udp("127.0.0.1:53")
        });
    assert_eq!(
        failed, 0,
        "datagrams went unanswered across the kill and the restart"
    );
    // The old app is gone: the new one echoes alone.
    let rest = Load::udp("127.0.0.1:53");
    rest.wait_for(10);
    assert_eq!(rest.finish().1, 0);
    second
        .wait_event("recovered", &[("binding", "dns")])
        .assert_fields(&[
            ("listen", "udp://127.0.0.1:53"),
            ("rule", "granted"),
            ("uid", "33"),
        ]);
    second
        .wait_event("start", &[("binding", "dns")])
        .assert_fields(&[("adopted", "0"), ("recovered", "1")]);
    assert!(ok > 150, "{ok} datagrams answered");
}

/// Below net.ipv4.ip_unprivileged_port_start only a privileged process can bind: a socket
/// portbinder bound there is recovered when a process the binding grants holds it, even if
/// others outside the binding hold it too (here a user dropped from `allow_users` since it
/// fetched the socket), and the audit line is a warning that names the rule and counts the
/// holders outside the binding. The recovered socket gets the binding's backlog, as an
/// adopted one does. (Held by no granted process, or not bound by portbinder, it is another
/// server's and is refused: tests/recovery_refusals.rs, tests/recovery_record.rs.)
#[test]
fn a_privileged_port_shared_with_a_holder_outside_the_binding_is_recovered_with_a_warning() {
    let env = TestEnv::new();
    let allowing = env.config(&http_binding("allow_users = [\"daemon\"]\nmode = \"0666\""));
    let mut first = env.serve(&allowing);
    let member = env.serving_app(WWW_DATA, "serve-http", "http");
    let _former = env.serving_app(DAEMON, "serve-http", "http");
    let inode = probe_inodes(&env, "http")[0];
    first.stop_with(Signal::SIGKILL);

    let daemon = env.serve(&env.config(&http_binding("mode = \"0666\"\nbacklog = 64")));
    assert_eq!(probe_inodes(&env, "http"), [inode]);
    let line = daemon.wait_event("recovered", &[("binding", "http")]);
    line.assert_fields(&[
        ("rule", "privileged-port"),
        ("holders", "2"),
        ("ungranted", "1"),
        ("pid", &member.pid().to_string()),
        ("uid", "33"),
    ]);
    assert_eq!(line.severity, "warning", "{}", line.line);
    assert_eq!(listen_backlog(80), 64);
}
