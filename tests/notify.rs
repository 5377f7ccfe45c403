//! systemd integration of the daemon, against a stand-in for the service manager: a datagram
//! socket the test binds and names in `NOTIFY_SOCKET`, reading what systemd would read
//! (the text, the SCM_RIGHTS descriptors and the kernel's SCM_CREDENTIALS of the sender).
//! The fd store round trip hands the stored sockets back the way systemd does on a restart:
//! LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES, in another order than they were stored.
//! (The real systemd is exercised by e2e/run.)

mod common;

use std::os::fd::AsFd;

use common::fake_systemd::FakeSystemd;
use common::*;

#[test]
fn stores_sockets_then_notifies_ready_after_the_drop_status_and_stopping() {
    let env = TestEnv::new();
    let systemd = FakeSystemd::at_path(env.path());
    let config = env.config(OPEN_HTTP);
    let mut daemon = Daemon::spawn(systemd.notifying(serve_command(&config)));

    // Before the drop (sent as root): both sockets of the binding, under its name.
    let stored = systemd.expect("FDSTORE=1\nFDNAME=http");
    assert_eq!((stored.pid, stored.uid), (daemon.pid() as i32, 0));
    assert_eq!(stored.fds.len(), 2);
    // READY=1 comes from the dropped process: the kernel stamps the sender's uid.
    let ready = systemd.expect("READY=1\nSTATUS=serving 1 binding: 0 grants, 0 denials");
    assert_eq!((ready.pid, ready.uid), (daemon.pid() as i32, NOBODY.uid));
    daemon.wait_event("fdstore", &[("fds", "2"), ("stored", "http")]);

    // The stored sockets are the ones granted.
    let probe = env.probe(WWW_DATA, &env.socket("http"));
    probe.assert_granted(2);
    let granted = probe.inodes();
    assert_eq!(stored.inodes(), granted);
    // (Mode 0666 lets the file's permissions pass anyone, so the daemon itself denies.)
    env.probe(DAEMON, &env.socket("http")).assert_denied();

    // One STATUS update for both, within the throttle interval.
    systemd.expect("STATUS=serving 1 binding: 1 grants, 1 denials");

    let status = daemon.stop();
    assert_eq!(status.code(), Some(0));
    systemd.expect("STOPPING=1\nSTATUS=stopping on SIGTERM after 1 grants, 1 denials");
}

#[test]
fn abstract_notify_socket_is_supported() {
    let env = TestEnv::new();
    // The test's own network namespace scopes the abstract name.
    let systemd = FakeSystemd::abstract_named("portbinder-test-notify");
    let config = env.config(HTTP_BINDING);
    let daemon = Daemon::spawn(systemd.notifying(serve_command(&config)));
    assert_eq!(systemd.recv().fds.len(), 1, "FDSTORE with one socket");
    let ready = systemd.expect("READY=1\nSTATUS=serving 1 binding: 0 grants, 0 denials");
    assert_eq!(ready.pid, daemon.pid() as i32);
}

#[test]
fn unusable_notify_socket_stops_start_up_with_exit_4() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    let missing = env.path().join("no-such-socket");
    for (value, needles) in [
        (
            missing.to_str().unwrap(),
            &[
                "cannot connect to NOTIFY_SOCKET",
                "No such file",
                "unset NOTIFY_SOCKET",
            ][..],
        ),
        (
            "vsock:2:1234",
            &["NOTIFY_SOCKET=`vsock:2:1234`", "@NAME"][..],
        ),
    ] {
        let mut cmd = serve_command(&config);
        cmd.env("NOTIFY_SOCKET", value);
        Proc::spawn(cmd, "portbinder serve")
            .finish(EXIT_TIMEOUT)
            .assert_error(4, needles);
        env.assert_no_socket_files();
    }
}

#[test]
fn stored_sockets_come_back_as_the_same_sockets_and_removed_bindings_leave_the_store() {
    let env = TestEnv::new();
    let systemd = FakeSystemd::at_path(env.path());
    let config = env.config(&format!("{DUAL_STACK_HTTP}{DNS_BINDING}"));
    let mut first = Daemon::spawn(systemd.notifying(serve_command(&config)));
    // Bindings are sorted by name: dns, then http.
    let dns_stored = systemd.expect("FDSTORE=1\nFDNAME=dns");
    let http_stored = systemd.expect("FDSTORE=1\nFDNAME=http");
    systemd.expect("READY=1\nSTATUS=serving 2 bindings: 0 grants, 0 denials");
    let before = env
        .probe(WWW_DATA, &env.socket("http"))
        .assert_granted(2)
        .inodes();
    assert_eq!(first.stop().code(), Some(0));
    systemd.expect("STOPPING=1\nSTATUS=stopping on SIGTERM after 1 grants, 0 denials");

    // The restart: `dns` is gone from the configuration and `alt` is new. The store comes
    // back in another order than it was filled.
    let alt = r#"
[binding.alt]
listen = ["127.0.0.1:81"]
group = "www-data"
"#;
    let config = env.config(&format!("{DUAL_STACK_HTTP}{alt}"));
    let store = [
        ("http", http_stored.fds[1].as_fd()),
        ("dns", dns_stored.fds[0].as_fd()),
        ("http", http_stored.fds[0].as_fd()),
    ];
    let second = Daemon::spawn(systemd.notifying(serve_with_listen_fds(&config, &store)));
    // What is no longer configured leaves the store first; only the new binding is stored
    // (http's sockets are still in the store).
    systemd.expect("FDSTOREREMOVE=1\nFDNAME=dns");
    let alt_stored = systemd.expect("FDSTORE=1\nFDNAME=alt");
    assert_eq!(alt_stored.fds.len(), 1);
    systemd.expect("READY=1\nSTATUS=serving 2 bindings: 0 grants, 0 denials");

    second.wait_event("start", &[("binding", "http"), ("adopted", "2")]);
    second.wait_event("start", &[("binding", "alt"), ("adopted", "0")]);
    second.wait_event("unused-fd", &[("name", "dns")]);
    second.wait_event(
        "fdstore",
        &[("fds", "1"), ("stored", "alt"), ("removed", "dns")],
    );
    let after = env
        .probe(WWW_DATA, &env.socket("http"))
        .assert_granted(2)
        .inodes();
    assert_eq!(
        before, after,
        "a grant after the restart hands out the same sockets"
    );
    let alt_granted = env.probe(WWW_DATA, &env.socket("alt"));
    assert_eq!(
        alt_granted.assert_granted(1).fds[0].inode,
        alt_stored.inodes()[0]
    );
}

#[test]
fn without_notify_socket_nothing_is_sent_and_nothing_fails() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    let mut cmd = serve_command(&config);
    cmd.env_remove("NOTIFY_SOCKET");
    let mut daemon = Daemon::spawn(cmd);
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(1);
    assert!(daemon.events_of("fdstore").is_empty());
    assert!(
        daemon.log_lines().iter().all(|l| !l.contains("op=notify")),
        "{}",
        daemon.report()
    );
    assert_eq!(daemon.stop().code(), Some(0));
}
