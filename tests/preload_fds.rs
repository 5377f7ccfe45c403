//! The preload shim against programs that manage their descriptors the way long-lived daemons
//! do (issue 10, item 2): they close every inherited fd (a loop up to the limit, closefrom,
//! close_range), their own sockets land on the numbers the granted ones had, they dup2 onto
//! fixed numbers, or they close the granted sockets with a raw system call the shim cannot
//! see. A bind of a granted address gets the daemon's socket whenever the shim still holds
//! it, and the real bind(2) otherwise: never another descriptor.

mod common;

use std::ffi::OsStr;
use std::net::UdpSocket;
use std::path::Path;
use std::time::Duration;

use common::shim::*;
use common::*;

const BINDINGS: &str = r#"
[binding.http]
listen = ["0.0.0.0:80", "[::]:80"]
group = "www-data"

[binding.dns]
listen = ["udp://0.0.0.0:53"]
group = "www-data"
"#;

/// Sends one datagram to 127.0.0.1:53 and returns the answer (bounded wait).
fn udp_ask(query: &str) -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket.send_to(query.as_bytes(), "127.0.0.1:53").unwrap();
    let mut buf = [0u8; 600];
    let n = socket.recv(&mut buf).expect("an answer from port 53");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Runs `daemonlike CLOSE socket tcp4 bind 0.0.0.0:80 socket udp4 bind 0.0.0.0:53 serve-tcp
/// serve-udp` through `exec --preload http,dns` and checks that it serves both ports on the
/// daemon's own sockets.
fn serves_80_and_53_after(close: &str, reported: &str) {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(BINDINGS));
    let program = compile_c(&env, "daemonlike");
    let steps = [
        close,
        "socket",
        "tcp4",
        "bind",
        "0.0.0.0:80",
        "socket",
        "udp4",
        "bind",
        "0.0.0.0:53",
        "serve-tcp",
        "serve-udp",
    ];
    let mut command = vec![program.as_os_str()];
    command.extend(steps.iter().map(OsStr::new));
    let mut proc = Proc::spawn(
        preload_as_www_data(&env, "http,dns", &[], &command),
        &format!("daemonlike {close} under --preload"),
    );
    expect_prefix(&mut proc, reported);
    // The program's fd numbers are its own: after closing everything it gets 3 and 4.
    proc.expect_line("socket tcp4 fd 3", EXIT_TIMEOUT);
    let tcp = expect_bound(&mut proc, "0.0.0.0:80");
    proc.expect_line("socket udp4 fd 4", EXIT_TIMEOUT);
    let udp = expect_bound(&mut proc, "0.0.0.0:53");
    let held = socket_inodes(daemon.pid());
    for (bound, local) in [(&tcp, "0.0.0.0:80"), (&udp, "0.0.0.0:53")] {
        assert_eq!(bound.local, local, "{bound:?}\n{}", proc.report());
        assert!(
            held.contains(&bound.inode),
            "the program serves {local} on inode {}, not one of the daemon's {held:?}",
            bound.inode
        );
    }
    proc.expect_line("listening", EXIT_TIMEOUT);
    assert_eq!(http_get("127.0.0.1:80"), DAEMONLIKE_REPLY);
    proc.expect_line("served tcp", EXIT_TIMEOUT);
    proc.expect_line("ready udp", EXIT_TIMEOUT);
    assert_eq!(udp_ask("example.org A"), "answer: example.org A");
    proc.expect_line("served udp", EXIT_TIMEOUT);
    proc.finish(EXIT_TIMEOUT).assert_quiet_success();
}

#[test]
fn daemon_closing_every_fd_in_a_loop_serves_80_and_53_udp() {
    serves_80_and_53_after("close-loop", "closed 3 to ");
}

#[test]
fn daemon_calling_closefrom_serves_80_and_53_udp() {
    serves_80_and_53_after("closefrom", "closefrom 3");
}

#[test]
fn daemon_calling_close_range_serves_80_and_53_udp() {
    serves_80_and_53_after("close-range", "close_range: 0");
}

/// Runs daemonlike with `steps` under `exec --preload http` (RLIMIT_NOFILE 2048), as
/// www-data.
fn daemonlike(env: &TestEnv, program: &Path, steps: &[&str]) -> Proc {
    let mut command = vec![program.as_os_str()];
    command.extend(steps.iter().map(OsStr::new));
    let mut cmd = preload_as_www_data(env, "http", &[], &command);
    with_fd_limit(&mut cmd, 2048);
    Proc::spawn(cmd, &format!("daemonlike {}", steps.join(" ")))
}

#[test]
fn own_sockets_on_the_old_numbers_are_never_handed_out() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(BINDINGS));
    let program = compile_c(&env, "daemonlike");
    let mut proc = daemonlike(
        &env,
        &program,
        &[
            "closefrom",
            "netlink",
            "socket",
            "udp4", // 3 and 4: where the grants were
            "socket",
            "tcp4",
            "bind",
            "127.0.0.1:8081", // not granted: the real bind
            "socket",
            "tcp4",
            "bind",
            "127.0.0.1:80", // granted port, other address
            "socket",
            "tcp4",
            "bind",
            "0.0.0.0:80", // granted: the daemon's socket
            "serve-tcp",
        ],
    );
    proc.expect_line("closefrom 3", EXIT_TIMEOUT);
    proc.expect_line("netlink fd 3", EXIT_TIMEOUT);
    proc.expect_line("socket udp4 fd 4", EXIT_TIMEOUT);
    proc.expect_line("socket tcp4 fd 5", EXIT_TIMEOUT);
    let real = expect_bound(&mut proc, "127.0.0.1:8081");
    assert_eq!((real.domain, real.local.as_str()), (2, "127.0.0.1:8081"));
    let held = socket_inodes(daemon.pid());
    assert!(!held.contains(&real.inode), "{real:?} is the daemon's");
    proc.expect_line("socket tcp4 fd 6", EXIT_TIMEOUT);
    // The real bind, refused: www-data may not bind port 80 itself (the namespace's
    // ip_unprivileged_port_start is 1024). The socket is still the program's own.
    proc.expect_line(
        &format!("bind 127.0.0.1:80: errno {} domain 2", libc::EACCES),
        EXIT_TIMEOUT,
    );
    proc.expect_line("socket tcp4 fd 7", EXIT_TIMEOUT);
    let granted = expect_bound(&mut proc, "0.0.0.0:80");
    assert_eq!((granted.domain, granted.local.as_str()), (2, "0.0.0.0:80"));
    assert!(held.contains(&granted.inode), "{granted:?} not in {held:?}");
    proc.expect_line("listening", EXIT_TIMEOUT);
    assert_eq!(http_get("127.0.0.1:80"), DAEMONLIKE_REPLY);
    proc.finish(EXIT_TIMEOUT).assert_success();
}

#[test]
fn dup2_and_dup3_onto_the_kept_numbers_move_the_sockets_aside() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(BINDINGS));
    let program = compile_c(&env, "daemonlike");
    // Every number from 3 to 1023 becomes a copy of the netlink socket, wherever the shim
    // keeps the granted ones.
    let mut proc = daemonlike(
        &env,
        &program,
        &[
            "netlink",
            "sweep",
            "socket",
            "tcp4",
            "bind",
            "0.0.0.0:80",
            "serve-tcp",
        ],
    );
    expect_prefix(&mut proc, "netlink fd ");
    expect_prefix(&mut proc, "sweep: ");
    expect_prefix(&mut proc, "socket tcp4 fd ");
    let granted = expect_bound(&mut proc, "0.0.0.0:80");
    let held = socket_inodes(daemon.pid());
    assert_eq!((granted.domain, granted.local.as_str()), (2, "0.0.0.0:80"));
    assert!(held.contains(&granted.inode), "{granted:?} not in {held:?}");
    proc.expect_line("listening", EXIT_TIMEOUT);
    assert_eq!(http_get("127.0.0.1:80"), DAEMONLIKE_REPLY);
    proc.finish(EXIT_TIMEOUT).assert_quiet_success();
}

#[test]
fn threads_binding_while_another_juggles_descriptors_always_get_the_granted_socket() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(BINDINGS));
    let program = compile_c(&env, "daemonlike");
    // Four threads bind 0.0.0.0:80 2000 times each while a fifth dup2s onto, closes and
    // closefrom()s the numbers 1000 and up, where the shim keeps the sockets (under 1024
    // with this fd limit): the moves and the checks race, and every bind must still get
    // the daemon's socket.
    let mut proc = daemonlike(
        &env,
        &program,
        &[
            "closefrom",
            "netlink",
            "socket",
            "tcp4",
            "bind",
            "0.0.0.0:80",
            "race",
            "0.0.0.0:80",
        ],
    );
    proc.expect_line("closefrom 3", EXIT_TIMEOUT);
    proc.expect_line("netlink fd 3", EXIT_TIMEOUT);
    proc.expect_line("socket tcp4 fd 4", EXIT_TIMEOUT);
    let granted = expect_bound(&mut proc, "0.0.0.0:80");
    let held = socket_inodes(daemon.pid());
    assert!(held.contains(&granted.inode), "{granted:?} not in {held:?}");
    proc.expect_line("race: 8000 binds, 8000 granted, 0 other", EXIT_TIMEOUT);
    proc.finish(EXIT_TIMEOUT).assert_quiet_success();
}

/// The warning of a bind that matched a grant the shim no longer holds.
fn lost_warning(addr: &str) -> String {
    format!(
        "portbinder-preload: bind {addr} (binding http): the granted socket was closed or \
         replaced behind the shim's back (a raw close_range or dup2 system call?): \
         using the real bind()\n"
    )
}

#[test]
fn granted_sockets_closed_by_a_raw_syscall_fall_back_to_the_real_bind() {
    let env = TestEnv::new();
    let _daemon = env.serve(&env.config(BINDINGS));
    let program = compile_c(&env, "daemonlike");
    let mut proc = daemonlike(
        &env,
        &program,
        &["sys-close-range", "socket", "tcp4", "bind", "0.0.0.0:80"],
    );
    proc.expect_line("syscall close_range: 0", EXIT_TIMEOUT);
    proc.expect_line("socket tcp4 fd 3", EXIT_TIMEOUT);
    proc.expect_line(
        &format!("bind 0.0.0.0:80: errno {} domain 2", libc::EACCES),
        EXIT_TIMEOUT,
    );
    let outcome = proc.finish(EXIT_TIMEOUT);
    outcome.assert_success();
    assert_eq!(outcome.stderr, lost_warning("0.0.0.0:80"), "{outcome}");
}

#[test]
fn numbers_reused_behind_the_shims_back_are_never_handed_out() {
    let env = TestEnv::new();
    let _daemon = env.serve(&env.config(BINDINGS));
    let program = compile_c(&env, "daemonlike");
    // The raw close_range closes the granted sockets where the shim keeps them; then every
    // free number, theirs included, becomes a copy of a netlink socket.
    let mut proc = daemonlike(
        &env,
        &program,
        &[
            "sys-close-range",
            "netlink",
            "socket",
            "tcp4",
            "fill",
            "bind",
            "0.0.0.0:80",
        ],
    );
    proc.expect_line("syscall close_range: 0", EXIT_TIMEOUT);
    proc.expect_line("netlink fd 3", EXIT_TIMEOUT);
    proc.expect_line("socket tcp4 fd 4", EXIT_TIMEOUT);
    proc.expect_line(
        &format!("filled up to 2047 (errno {})", libc::EMFILE),
        EXIT_TIMEOUT,
    );
    proc.expect_line(
        &format!("bind 0.0.0.0:80: errno {} domain 2", libc::EACCES),
        EXIT_TIMEOUT,
    );
    let outcome = proc.finish(EXIT_TIMEOUT);
    outcome.assert_success();
    assert_eq!(outcome.stderr, lost_warning("0.0.0.0:80"), "{outcome}");
}
