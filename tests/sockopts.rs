//! Per-binding socket options (issue 11): the fdserver gist's own client app, unchanged,
//! served through a `nonblocking = true` binding (and stuck in accept() without it); every
//! option read back with getsockopt by a client of the granted sockets; free_bind and
//! dual-stack shown by real traffic. The error paths are in tests/sockopts_errors.rs.

mod common;

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::sockopts::{python_as, read_back, sysctl};
use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

/// The gist's app as www-data against binding `http`, once the daemon granted it.
fn gist_app(env: &TestEnv, daemon: &Daemon) -> Proc {
    let arg = format!("--unix_socket={}", env.socket("http").display());
    let app = python_as(env, WWW_DATA, "gist_app.py", &[&arg]);
    daemon.wait_event(
        "grant",
        &[("binding", "http"), ("pid", &app.pid().to_string())],
    );
    app
}

/// Sends a GET to 127.0.0.1:80 and reads until the server closes; every wait bounded.
fn get(timeout: Duration) -> std::io::Result<String> {
    let mut stream = TcpStream::connect("127.0.0.1:80")?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

/// The system call process `pid` is blocked in (the first field of /proc/PID/syscall).
fn blocked_in(pid: u32) -> Option<i64> {
    let text = fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The binding the gist's app fetches (`--unix_socket` names its socket).
const GIST_BINDING: &str = HTTP_BINDING;

#[test]
fn the_gists_app_answers_through_a_nonblocking_binding_two_copies_at_once() {
    let env = TestEnv::new();
    let config = env.config(&format!("{GIST_BINDING}nonblocking = true\n"));
    let daemon = env.serve(&config);
    daemon
        .wait_event("start", &[("binding", "http")])
        .assert_fields(&[("adopted", "0"), ("nonblocking", "1")]);
    let first = gist_app(&env, &daemon);
    let second = gist_app(&env, &daemon);
    // Each copy answers while the other is stopped: both serve port 80, on one socket.
    for (serving, stopped) in [(&first, &second), (&second, &first)] {
        stopped.signal(Signal::SIGSTOP);
        let reply = get(Duration::from_secs(30)).expect("an answer through portbinder");
        stopped.signal(Signal::SIGCONT);
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
        assert!(
            reply.ends_with(&format!("\r\n\r\nHello from {}", serving.pid())),
            "{reply}"
        );
    }
}

#[test]
fn the_gists_app_is_stuck_in_accept_on_a_blocking_binding() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(GIST_BINDING));
    daemon
        .wait_event("start", &[("binding", "http")])
        .assert_fields(&[("nonblocking", "0")]);
    let app = gist_app(&env, &daemon);
    // The original bug: Tornado accepts the connection, loops to accept the next one and
    // blocks there, so the request it took is never answered.
    let mut stream = TcpStream::connect("127.0.0.1:80").unwrap();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let stuck = wait_until(LOG_TIMEOUT, || {
        blocked_in(app.pid()) == Some(libc::SYS_accept4)
    });
    assert!(
        stuck,
        "the app is not blocked in accept4: {:?}",
        blocked_in(app.pid())
    );
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut reply = Vec::new();
    let error = stream.read_to_end(&mut reply).unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) && reply.is_empty(),
        "{error}: {reply:?}"
    );
}

#[test]
fn the_nonblocking_flag_serves_a_one_off_bind_to_the_gists_app() {
    let env = TestEnv::new();
    let dir = env.socket_dir();
    let daemon = Daemon::start(&[
        "--bind".as_ref(),
        "http=127.0.0.1:80".as_ref(),
        "--group".as_ref(),
        "www-data".as_ref(),
        "--user".as_ref(),
        "nobody".as_ref(),
        "--socket-dir".as_ref(),
        dir.as_os_str(),
        "--nonblocking".as_ref(),
    ]);
    daemon
        .wait_event("start", &[("binding", "http")])
        .assert_fields(&[("nonblocking", "1")]);
    let app = gist_app(&env, &daemon);
    let reply = get(Duration::from_secs(30)).expect("an answer through portbinder");
    assert!(
        reply.ends_with(&format!("Hello from {}", app.pid())),
        "{reply}"
    );
    // The flag describes --bind bindings only.
    let outcome = run(&["serve", "--nonblocking"]);
    assert_eq!(outcome.code, Some(2), "{outcome}");
    assert!(outcome.stderr.contains("--bind"), "{outcome}");
}

#[test]
fn every_option_reads_back_on_the_granted_sockets() {
    let env = TestEnv::new();
    // Above the sysctl maximum, which only SO_RCVBUFFORCE/SO_SNDBUFFORCE can pass.
    let receive = sysctl("net.core.rmem_max") + 4096;
    let send = sysctl("net.core.wmem_max") + 8192;
    let config = env.config(&format!(
        r#"
[binding.tcp]
listen = ["127.0.0.1:80", "[::1]:80"]
group = "www-data"
nonblocking = true
free_bind = true
bind_to_device = "lo"
reuse_address = false
defer_accept = 3
fast_open = 32
keepalive = true
keepalive_idle = 61
keepalive_interval = 7
keepalive_count = 4
receive_buffer = {receive}
send_buffer = {send}
mark = 42

[binding.udp]
listen = ["udp://127.0.0.1:53"]
group = "www-data"
reuse_address = true
receive_buffer = "1M"
"#
    ));
    let daemon = env.serve(&config);
    daemon
        .wait_event("start", &[("binding", "tcp")])
        .assert_fields(&[
            ("nonblocking", "1"),
            ("free_bind", "1"),
            ("bind_to_device", "lo"),
            ("reuse_address", "0"),
            ("defer_accept", "3"),
            ("fast_open", "32"),
            ("keepalive", "1"),
            ("keepalive_idle", "61"),
            ("keepalive_interval", "7"),
            ("keepalive_count", "4"),
            ("receive_buffer", &receive.to_string()),
            ("send_buffer", &send.to_string()),
            ("mark", "42"),
        ]);
    let tcp = read_back(&env, "tcp", &[&receive.to_string()]);
    for (i, family) in ["AF_INET", "AF_INET6"].into_iter().enumerate() {
        let fd = &tcp["fds"][i];
        assert_eq!(fd["family"], family, "{tcp}");
        for (key, value) in [
            ("nonblocking", Value::from(true)),
            ("free_bind", true.into()),
            ("bind_to_device", "lo".into()),
            ("reuse_address", false.into()),
            ("defer_accept", 3.into()),
            ("fast_open", 32.into()),
            ("keepalive", true.into()),
            ("keepalive_idle", 61.into()),
            ("keepalive_interval", 7.into()),
            ("keepalive_count", 4.into()),
            // The kernel keeps twice what it is asked for.
            ("receive_buffer", (2 * receive).into()),
            ("send_buffer", (2 * send).into()),
            ("mark", 42.into()),
        ] {
            assert_eq!(fd[key], value, "{key} of {fd}");
        }
        // Accepted connections inherit the keepalive settings.
        let accepted = &fd["accepted"];
        assert_eq!(accepted["keepalive"], true, "{fd}");
        assert_eq!(accepted["keepalive_idle"], 61, "{fd}");
        assert_eq!(accepted["keepalive_count"], 4, "{fd}");
    }
    assert_eq!(tcp["fds"][1]["ipv6_only"], true);
    // What the application could do itself: SO_RCVBUF is capped at rmem_max, and
    // SO_RCVBUFFORCE is refused.
    assert_eq!(tcp["app_forced"], false, "{tcp}");
    assert_eq!(tcp["app_rcvbuf"], 2 * (receive - 4096), "{tcp}");

    let udp = read_back(&env, "udp", &[]);
    let fd = &udp["fds"][0];
    assert_eq!(
        (&fd["type"], &fd["nonblocking"], &fd["reuse_address"]),
        (&Value::from("SOCK_DGRAM"), &false.into(), &true.into()),
        "{udp}"
    );
    assert_eq!(fd["receive_buffer"], 2 << 20, "{udp}");
    assert_eq!(fd["mark"], 0, "{udp}");
    assert_eq!(fd["free_bind"], false, "{udp}");
    // Without the options: blocking, SO_REUSEADDR only on TCP.
    daemon
        .wait_event("start", &[("binding", "udp")])
        .assert_fields(&[("nonblocking", "0"), ("reuse_address", "1")]);
}

#[test]
fn free_bind_binds_an_address_the_namespace_does_not_have_yet() {
    let env = TestEnv::new();
    // Only 127.0.0.1 itself is local now, not the rest of 127.0.0.0/8.
    for args in [
        &["addr", "del", "127.0.0.1/8", "dev", "lo"][..],
        &["addr", "add", "127.0.0.1/32", "dev", "lo"][..],
    ] {
        assert!(Command::new("ip").args(args).status().unwrap().success());
    }
    let vip = "\n[binding.http]\nlisten = [\"127.0.0.2:80\"]\ngroup = \"www-data\"\n";
    let without = env.config(vip);
    run_serve_expect_failure(&["--config".as_ref(), without.as_os_str()]).assert_error(
        4,
        &[
            "cannot bind tcp://127.0.0.2:80 for binding `http`",
            "no local interface has this address",
        ],
    );
    env.assert_no_socket_files();

    let daemon = env.serve(&env.config(&format!("{vip}free_bind = true\n")));
    daemon
        .wait_event("start", &[("binding", "http")])
        .assert_fields(&[("listen", "tcp://127.0.0.2:80"), ("free_bind", "1")]);
    assert_eq!(read_back(&env, "http", &[])["fds"][0]["free_bind"], true);
    // The address arrives later (a VIP); the socket bound before it serves it.
    assert!(
        Command::new("ip")
            .args(["addr", "add", "127.0.0.2/32", "dev", "lo"])
            .status()
            .unwrap()
            .success()
    );
    let mut server = env.client(
        WWW_DATA,
        &["serve-http", env.socket("http").to_str().unwrap(), "1"],
    );
    server.expect_line("ready", EXIT_TIMEOUT);
    let reply = http_get("127.0.0.2:80");
    assert!(reply.ends_with("hello from uid 33\n"), "{reply}");
    server.finish(EXIT_TIMEOUT).assert_success();
}

#[test]
fn a_dual_stack_binding_takes_ipv4_clients_on_its_ipv6_socket() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(
        "\n[binding.http]\nlisten = [\"[::]:80\"]\ngroup = \"www-data\"\nipv6_only = false\n",
    ));
    daemon
        .wait_event("start", &[("binding", "http")])
        .assert_fields(&[("listen", "tcp://[::]:80"), ("ipv6_only", "0")]);
    let fd = &read_back(&env, "http", &[])["fds"][0];
    assert_eq!(
        (&fd["family"], &fd["ipv6_only"]),
        (&"AF_INET6".into(), &false.into()),
        "{fd}"
    );
    let mut server = env.client(
        WWW_DATA,
        &["serve-http", env.socket("http").to_str().unwrap(), "2"],
    );
    server.expect_line("ready", EXIT_TIMEOUT);
    for addr in ["127.0.0.1:80", "[::1]:80"] {
        let reply = http_get(addr);
        assert!(reply.ends_with("hello from uid 33\n"), "{addr}: {reply}");
    }
    server.finish(EXIT_TIMEOUT).assert_success();
}
