//! Per-binding socket options (issue 11), the error paths: bad values refused by `check` and
//! `serve` naming the file, binding, field and value; an interface that does not exist; and
//! the options that need CAP_NET_ADMIN, refused with the privilege named when the daemon is
//! started as systemd starts the unit (the run user with two ambient capabilities), applied
//! and then given up when it has it.

mod common;

use std::fs;
use std::path::Path;

use common::sockopts::{read_back, sysctl};
use common::*;

/// Both `check` and `serve` refuse `config` (exit 3), naming the file and every needle;
/// nothing is left in the socket directory.
fn assert_refused(env: &TestEnv, config: &Path, needles: &[&str]) {
    let path = config.to_str().unwrap();
    let mut all = vec![path];
    all.extend_from_slice(needles);
    for outcome in [
        run_check(&["--config", path]),
        run_serve_expect_failure(&["--config", path]),
    ] {
        outcome.assert_error(3, &all);
    }
    env.assert_no_socket_files();
}

#[test]
fn bad_option_values_are_refused_naming_file_binding_field_and_value() {
    let env = TestEnv::new();
    let http = "\n[binding.http]\nlisten = [\"127.0.0.1:80\", \"[::]:80\"]\ngroup = \"www-data\"\n";
    let dns = "\n[binding.dns]\nlisten = [\"udp://127.0.0.1:53\"]\ngroup = \"www-data\"\n";
    let cases: &[(String, &[&str])] = &[
        (format!("{http}nonblocking = \"yes\"\n"), &["binding `http`", "nonblocking = \"yes\"", "expected a boolean"]),
        (
            "\n[binding.http]\nlisten = [\"0.0.0.0:80\", \"[::]:80\"]\ngroup = \"www-data\"\nipv6_only = false\n".to_owned(),
            &["binding `http`: field `listen`: tcp://0.0.0.0:80 collides with tcp://[::]:80, which takes IPv4 too with `ipv6_only = false`", "remove tcp://0.0.0.0:80"],
        ),
        (format!("{dns}defer_accept = 5\n"), &["binding `dns`: field `defer_accept`: applies to TCP sockets, and the binding has no tcp:// address: remove it"]),
        (format!("{dns}ipv6_only = false\n"), &["binding `dns`: field `ipv6_only`: applies to IPv6 sockets"]),
        (
            "\n[binding.http]\nlisten = [\"[::1]:80\"]\ngroup = \"www-data\"\nipv6_only = false\n".to_owned(),
            &["binding `http`: field `ipv6_only`: false changes only `[::]:PORT` (and IPv4-mapped) addresses, and the binding has none"],
        ),
        (format!("{http}keepalive_count = 0\n"), &["binding `http`: field `keepalive_count`: 0 is out of range: use 1 to 127"]),
        (format!("{http}fast_open = 100000\n"), &["binding `http`: field `fast_open`: 100000 is out of range"]),
        (format!("{http}receive_buffer = \"lots\"\n"), &["binding `http`: field `receive_buffer`: \"lots\" is not a buffer size", "\"8M\""]),
        (format!("{http}send_buffer = -5\n"), &["binding `http`: field `send_buffer`: -5 is not a buffer size"]),
        (format!("{http}mark = 4294967296\n"), &["binding `http`: field `mark`: 4294967296 is out of range: use 0 to 4294967295"]),
        (format!("{http}bind_to_device = \"much-too-long-name0\"\n"), &["binding `http`: field `bind_to_device`: \"much-too-long-name0\" is 19 bytes long", "`ip link`"]),
    ];
    for (bindings, needles) in cases {
        let config = env.config(bindings);
        assert_refused(&env, &config, needles);
    }
}

#[test]
fn a_missing_interface_fails_the_start_naming_binding_option_and_value() {
    let env = TestEnv::new();
    let config = env.config(&format!("{HTTP_BINDING}bind_to_device = \"pbnosuch0\"\n"));
    run_serve_expect_failure(&["--config".as_ref(), config.as_os_str()]).assert_error(
        4,
        &[
            "tcp://127.0.0.1:80 of binding `http`",
            config.to_str().unwrap(),
            "`bind_to_device = \"pbnosuch0\"`",
            "no interface of that name",
            "fix:",
        ],
    );
    env.assert_no_socket_files();
}

#[test]
fn mark_without_cap_net_admin_fails_with_exit_4_naming_the_privilege() {
    let env = TestEnv::new();
    let (cmd, config) =
        env.serve_as_nobody_with_caps(UNIT_CAPS, &format!("{HTTP_BINDING}mark = 42\n"));
    Proc::spawn(cmd, "portbinder serve without CAP_NET_ADMIN")
        .finish(EXIT_TIMEOUT)
        .assert_error(
            4,
            &[
                "tcp://127.0.0.1:80 of binding `http`",
                config.to_str().unwrap(),
                "`mark = 42`",
                "setting SO_MARK needs CAP_NET_ADMIN, which this process does not have",
                "fix: start portbinder as root",
                "AmbientCapabilities=",
            ],
        );
    env.assert_no_socket_files();
}

#[test]
fn buffers_beyond_the_sysctl_maximum_without_cap_net_admin_fail_naming_the_privilege() {
    let env = TestEnv::new();
    let max = sysctl("net.core.rmem_max");
    let (cmd, _) = env.serve_as_nobody_with_caps(
        UNIT_CAPS,
        &format!("{HTTP_BINDING}receive_buffer = {}\n", max + 1),
    );
    Proc::spawn(cmd, "portbinder serve without CAP_NET_ADMIN")
        .finish(EXIT_TIMEOUT)
        .assert_error(
            4,
            &[
                &format!("`receive_buffer = {}`", max + 1),
                &format!("the kernel capped it at {max} bytes (net.core.rmem_max)"),
                "a larger buffer needs SO_RCVBUFFORCE and so CAP_NET_ADMIN, which this process does not have",
                "raise net.core.rmem_max",
            ],
        );
    env.assert_no_socket_files();
    // Within the maximum, SO_RCVBUF needs no privilege.
    let (cmd, _) = env.serve_as_nobody_with_caps(
        UNIT_CAPS,
        &format!("{HTTP_BINDING}receive_buffer = {max}\n"),
    );
    let _daemon = Daemon::spawn(cmd);
    assert_eq!(
        read_back(&env, "http", &[])["fds"][0]["receive_buffer"],
        2 * max
    );
}

#[test]
fn with_cap_net_admin_in_the_ambient_set_mark_is_applied_and_then_dropped() {
    let env = TestEnv::new();
    let (cmd, _) = env.serve_as_nobody_with_caps(
        "+net_bind_service,+chown,+net_admin",
        &format!("{HTTP_BINDING}mark = 42\n"),
    );
    let daemon = Daemon::spawn(cmd);
    assert_eq!(read_back(&env, "http", &[])["fds"][0]["mark"], 42);
    let status = fs::read_to_string(format!("/proc/{}/status", daemon.pid())).unwrap();
    for caps in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert!(
            status.contains(&format!("{caps}:\t0000000000000000")),
            "{caps}: {status}"
        );
    }
}
