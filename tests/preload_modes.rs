//! Which binds the preload shim serves, and how: an exact address match unless the wildcard
//! match is asked for (issue 10, item 2), and the shared socket's blocking mode left as it
//! is, with a warning when the program asked for the other one (issue 11).

mod common;

use common::shim::*;
use common::*;

/// Runs `daemonlike STEPS...` under `exec --preload [FLAGS...] http` as www-data.
fn daemonlike(env: &TestEnv, flags: &[&str], steps: &[&str]) -> Proc {
    let program = compile_c(env, "daemonlike");
    let mut command = vec![program.into_os_string()];
    command.extend(steps.iter().map(|s| s.into()));
    Proc::spawn(
        preload_as_www_data(env, "http", flags, &command),
        &format!("daemonlike {}", steps.join(" ")),
    )
}

#[test]
fn loopback_bind_is_not_served_by_a_wildcard_grant() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(ANY_ADDRESS_HTTP));
    let mut proc = daemonlike(
        &env,
        &[],
        &[
            "socket",
            "tcp4",
            "bind",
            "127.0.0.1:80",
            "socket",
            "tcp6",
            "bind",
            "[::1]:80",
            "socket",
            "tcp4",
            "bind",
            "0.0.0.0:80",
        ],
    );
    // The real bind for both: www-data may not bind port 80 itself (EACCES; the namespace's
    // ip_unprivileged_port_start is 1024), so a loopback-only service is not silently
    // exposed on every interface.
    expect_prefix(&mut proc, "socket tcp4 fd ");
    proc.expect_line(
        &format!("bind 127.0.0.1:80: errno {} domain 2", libc::EACCES),
        EXIT_TIMEOUT,
    );
    expect_prefix(&mut proc, "socket tcp6 fd ");
    proc.expect_line(
        &format!("bind [::1]:80: errno {} domain 10", libc::EACCES),
        EXIT_TIMEOUT,
    );
    // The exact address is still served.
    expect_prefix(&mut proc, "socket tcp4 fd ");
    let granted = expect_bound(&mut proc, "0.0.0.0:80");
    assert!(socket_inodes(daemon.pid()).contains(&granted.inode));
    proc.finish(EXIT_TIMEOUT).assert_quiet_success();
}

/// With the opt-in, a loopback bind gets the binding's wildcard socket, and serves on it.
fn loopback_bind_served_with(flags: &[&str], env_var: bool) {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(ANY_ADDRESS_HTTP));
    let program = compile_c(&env, "daemonlike");
    let steps = [
        "socket",
        "tcp4",
        "bind",
        "127.0.0.1:80",
        "socket",
        "tcp6",
        "bind",
        "[::1]:80",
        "serve-tcp",
    ];
    let mut command = vec![program.into_os_string()];
    command.extend(steps.iter().map(|s| s.into()));
    let mut cmd = preload_as_www_data(&env, "http", flags, &command);
    if env_var {
        cmd.env("PORTBINDER_PRELOAD_ANY_ADDRESS", "1");
    }
    let mut proc = Proc::spawn(cmd, "daemonlike with the wildcard opt-in");
    let held = socket_inodes(daemon.pid());
    for (addr, local) in [("127.0.0.1:80", "0.0.0.0:80"), ("[::1]:80", "[::]:80")] {
        expect_prefix(&mut proc, "socket tcp");
        let bound = expect_bound(&mut proc, addr);
        assert_eq!(bound.local, local, "{bound:?}");
        assert!(held.contains(&bound.inode), "{bound:?} not in {held:?}");
    }
    proc.expect_line("listening", EXIT_TIMEOUT);
    assert_eq!(http_get("[::1]:80"), DAEMONLIKE_REPLY);
    proc.finish(EXIT_TIMEOUT).assert_quiet_success();
}

#[test]
fn preload_any_address_flag_serves_a_loopback_bind_with_the_wildcard_socket() {
    loopback_bind_served_with(&["--preload-any-address"], false);
}

#[test]
fn preload_any_address_variable_serves_a_loopback_bind_with_the_wildcard_socket() {
    loopback_bind_served_with(&[], true);
}

/// The one line the shim prints when the program's mode differs from the shared socket's.
fn mode_warning(shared: &str, asked: &str, setting: &str) -> String {
    format!(
        "portbinder-preload: bind 0.0.0.0:80 (binding http): the shared socket is {shared} \
         and this program asked for {asked}; it stays {shared}, since the mode is shared by \
         every holder: set `nonblocking = {setting}` in the binding's configuration\n"
    )
}

#[test]
fn nonblocking_program_on_a_blocking_binding_is_warned_and_the_shared_mode_kept() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(ANY_ADDRESS_HTTP));
    let mut proc = daemonlike(&env, &[], &["socket", "tcp4-nb", "bind", "0.0.0.0:80"]);
    expect_prefix(&mut proc, "socket tcp4-nb fd ");
    let bound = expect_bound(&mut proc, "0.0.0.0:80");
    let outcome = proc.finish(EXIT_TIMEOUT);
    outcome.assert_success();
    // The program's descriptor shows the shared mode, and so does the daemon's.
    assert!(!bound.nonblock, "{bound:?}\n{outcome}");
    assert!(!holds_nonblocking(daemon.pid(), bound.inode));
    assert_eq!(
        outcome.stderr,
        mode_warning("blocking", "non-blocking", "true"),
        "{outcome}"
    );

    // A program asking for the socket's own mode hears nothing.
    let mut proc = daemonlike(&env, &[], &["socket", "tcp4", "bind", "0.0.0.0:80"]);
    expect_prefix(&mut proc, "socket tcp4 fd ");
    assert!(!expect_bound(&mut proc, "0.0.0.0:80").nonblock);
    proc.finish(EXIT_TIMEOUT).assert_quiet_success();
}

#[test]
fn blocking_program_on_a_nonblocking_socket_is_warned_and_the_shared_mode_kept() {
    let env = TestEnv::new();
    // The binding makes the shared socket non-blocking.
    let daemon = env.serve(&env.config(&format!("{ANY_ADDRESS_HTTP}nonblocking = true\n")));

    let mut proc = daemonlike(&env, &[], &["socket", "tcp4", "bind", "0.0.0.0:80"]);
    expect_prefix(&mut proc, "socket tcp4 fd ");
    let bound = expect_bound(&mut proc, "0.0.0.0:80");
    let outcome = proc.finish(EXIT_TIMEOUT);
    outcome.assert_success();
    assert!(bound.nonblock, "{bound:?}\n{outcome}");
    assert!(holds_nonblocking(daemon.pid(), bound.inode));
    assert_eq!(
        outcome.stderr,
        mode_warning("non-blocking", "blocking", "false"),
        "{outcome}"
    );

    let mut proc = daemonlike(&env, &[], &["socket", "tcp4-nb", "bind", "0.0.0.0:80"]);
    expect_prefix(&mut proc, "socket tcp4-nb fd ");
    assert!(expect_bound(&mut proc, "0.0.0.0:80").nonblock);
    proc.finish(EXIT_TIMEOUT).assert_quiet_success();
}
