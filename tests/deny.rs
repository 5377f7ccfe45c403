//! Access control: the socket file's mode, then the daemon's own check of the peer's uid, gid
//! and supplementary groups (SO_PEERCRED / SO_PEERGROUPS). Root gets no exception.

mod common;

use common::*;

#[test]
fn socket_file_mode_refuses_users_outside_owner_and_group() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(HTTP_BINDING));
    let socket = env.socket("http");

    // daemon (uid 1) is neither the socket's owner (nobody) nor in its group (www-data): with
    // mode 0660 the kernel refuses the connect, so the daemon never hears of it.
    let refused = env.probe(DAEMON, &socket);
    assert_eq!(refused.connect_errno, Some(libc::EACCES), "{refused:#?}");

    env.probe(WWW_DATA, &socket).assert_granted(1);
    daemon.wait_event("grant", &[("uid", "33")]);
    assert!(
        daemon.events_of("deny").is_empty(),
        "a refused connect must not reach the daemon\n{}",
        daemon.report()
    );
}

#[test]
fn daemon_denies_peer_outside_the_group() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(&http_binding("mode = \"0666\"")));

    let probe = env.probe(NOBODY, &env.socket("http"));
    probe.assert_denied();

    // The full line is checked in tests/audit.rs.
    let pid = probe.pid.to_string();
    let deny = daemon.wait_event(
        "deny",
        &[("pid", &pid), ("uid", "65534"), ("user", "nobody")],
    );
    assert_eq!(deny.severity, "warning", "{}", deny.line);
}

#[test]
fn allow_users_by_name_and_by_uid() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(&http_binding(
        "mode = \"0666\"\nallow_users = [\"nobody\", \"1\"]",
    )));
    let socket = env.socket("http");

    env.probe(NOBODY, &socket).assert_granted(1);
    env.probe(DAEMON, &socket).assert_granted(1);
    env.probe(ROOT, &socket).assert_denied();
    daemon.wait_event("grant", &[("uid", "65534"), ("user", "nobody")]);
    daemon.wait_event("grant", &[("uid", "1"), ("user", "daemon")]);
}

#[test]
fn allow_groups_grants_members_of_the_group() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(&http_binding(
        "mode = \"0666\"\nallow_groups = [\"nogroup\"]",
    )));
    let socket = env.socket("http");

    env.probe(NOBODY, &socket).assert_granted(1);
    env.probe(DAEMON, &socket).assert_denied();
    daemon.wait_event("grant", &[("uid", "65534"), ("gid", "65534")]);
    daemon.wait_event("deny", &[("uid", "1")]);
}

#[test]
fn supplementary_group_membership_is_enough() {
    let env = TestEnv::new();
    // Mode 0666, so that the daemon's own check is what decides for both peers.
    let daemon = env.serve(&env.config(&http_binding("mode = \"0666\"")));
    let socket = env.socket("http");

    env.probe(DAEMON, &socket).assert_denied();
    env.probe(DAEMON_IN_WWW_DATA, &socket).assert_granted(1);
    daemon.wait_event("deny", &[("uid", "1")]);
    daemon.wait_event("grant", &[("uid", "1"), ("gid", "1"), ("user", "daemon")]);
}

#[test]
fn supplementary_group_passes_the_socket_file_mode() {
    let env = TestEnv::new();
    let _daemon = env.serve(&env.config(HTTP_BINDING));
    env.probe(DAEMON_IN_WWW_DATA, &env.socket("http"))
        .assert_granted(1);
}

#[test]
fn root_gets_no_exception() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(&http_binding("mode = \"0666\"")));

    env.probe(ROOT, &env.socket("http")).assert_denied();
    daemon.wait_event("deny", &[("uid", "0"), ("gid", "0"), ("user", "root")]);
}
