//! `portbinder exec` failures: a missing or stale daemon, an unknown or malformed binding,
//! a denial, a broken daemon, a program that cannot run, an fd already in the way. Each exits
//! with its documented code, explains itself and does not exec the program.

mod common;

use std::fs;
use std::os::fd::AsRawFd;

use common::*;

/// Runs `portbinder exec ARGS -- touch MARKER` as `user`, expects failure with `code` and
/// every needle on stderr, and checks that the program did not run.
fn assert_exec_fails(env: &TestEnv, user: User, names: &str, code: i32, needles: &[&str]) {
    let marker = env.path().join("ran");
    let outcome = Proc::spawn(
        env.exec_as(
            user,
            names,
            &["/usr/bin/touch".as_ref(), marker.as_os_str()],
        ),
        "portbinder exec",
    )
    .finish(EXIT_TIMEOUT);
    outcome.assert_error(code, needles);
    assert!(!marker.exists(), "the program ran despite the error");
}

#[test]
fn exec_errors_have_codes_and_reasons_and_never_exec() {
    let env = TestEnv::new();
    // The daemon is not running: no socket directory at all.
    assert_exec_fails(
        &env,
        WWW_DATA,
        "http",
        7,
        &["binding `http`", "http.sock", "portbinder list", "running"],
    );

    let daemon = env.serve(&env.config(&format!("{OPEN_HTTP}{DNS_BINDING}")));
    let sock = env.socket("http");
    let sock = sock.to_str().unwrap();
    // No such binding.
    assert_exec_fails(
        &env,
        WWW_DATA,
        "http,nope",
        7,
        &["binding `nope`", "nope.sock"],
    );
    // Denied by the daemon, with its reason (http is 0666, so nobody can connect).
    assert_exec_fails(
        &env,
        NOBODY,
        "http",
        6,
        &[
            "binding `http`",
            sock,
            "uid 65534 may not fetch binding `http`",
        ],
    );
    // Denied by the socket file's mode (dns is 0660; nobody owns neither file nor group...
    // but nobody is the daemon's own user, so use daemon (uid 1)).
    assert_exec_fails(
        &env,
        DAEMON,
        "dns",
        6,
        &["binding `dns`", "permissions", "portbinder list"],
    );
    // A bad name never reaches the daemon.
    assert_exec_fails(
        &env,
        WWW_DATA,
        "../etc",
        2,
        &["`../etc` is not a binding name"],
    );
    // A stale socket file: the daemon was killed (no clean-up), the file stays.
    daemon.signal(nix::sys::signal::Signal::SIGKILL);
    drop(daemon);
    assert!(env.socket("http").exists());
    assert_exec_fails(
        &env,
        WWW_DATA,
        "http",
        7,
        &[
            "binding `http`",
            "Connection refused",
            "is portbinder running",
        ],
    );
}

#[test]
fn exec_protocol_errors_exit_8() {
    let env = TestEnv::new();
    fs::create_dir_all(env.socket_dir()).unwrap();
    // A broken daemon: announces 2 sockets but sends 1.
    let server = fake_daemon::announcing_2_sending_1(&env.socket("http"), 1);
    assert_exec_fails(
        &env,
        WWW_DATA,
        "http",
        8,
        &[
            "binding `http`",
            "protocol error",
            "announces 2 descriptors but carries 1",
        ],
    );
    server.join().unwrap();
}

#[test]
fn exec_program_errors_and_busy_fds() {
    let env = TestEnv::new();
    let _daemon = env.serve(&env.config(&format!("{OPEN_HTTP}{DNS_BINDING}")));
    let run = |program: &str| {
        Proc::spawn(env.exec_as(WWW_DATA, "http", &[program]), "portbinder exec")
            .finish(EXIT_TIMEOUT)
    };
    run("/nonexistent/server").assert_error(
        127,
        &["cannot execute `/nonexistent/server`", "No such file"],
    );
    run("/etc/passwd").assert_error(126, &["cannot execute `/etc/passwd`", "Permission denied"]);

    // fd 3 already open in the parent: the sockets cannot go there without clobbering it.
    let mut cmd = env.exec_as(WWW_DATA, "http", &["/usr/bin/true"]);
    let file = fs::File::open("/etc/hostname").unwrap();
    let raw = file.as_raw_fd();
    inherit_fd(&mut cmd, raw, 3);
    Proc::spawn(cmd, "portbinder exec with fd 3 open")
        .finish(EXIT_TIMEOUT)
        .assert_error(9, &["fd 3 is already open"]);
}
