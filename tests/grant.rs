//! Grants: peers in a binding's group receive working sockets, in config order.

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use common::*;

/// `http` on 0.0.0.0:80: the client is fetched from 127.0.0.1:80.
const ANY_IPV4_HTTP: &str = r#"
[binding.http]
listen = ["0.0.0.0:80"]
group = "www-data"
"#;

/// Runs an HTTP-serving client mode (`serve-http` or `recv-handle`) as www-data against a
/// 0.0.0.0:80 binding, fetches a page from 127.0.0.1:80 and checks the grant line.
fn serves_http_with(mode: &str) {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(ANY_IPV4_HTTP));
    let socket = env.socket("http");
    let mut client = env.client(WWW_DATA, &[mode.as_ref(), socket.as_os_str(), "1".as_ref()]);
    client.expect_line("ready", EXIT_TIMEOUT);
    let client_pid = client.pid().to_string();

    let reply = http_get("127.0.0.1:80");
    assert_eq!(reply, "HTTP/1.0 200 OK\r\n\r\nhello from uid 33\n");
    client.finish(EXIT_TIMEOUT).assert_success();

    let grant = daemon.wait_event("grant", &[("binding", "http")]);
    grant.assert_fields(&[
        ("event", "grant"),
        ("binding", "http"),
        ("fds", "1"),
        ("pid", &client_pid),
        ("uid", "33"),
        ("gid", "33"),
        ("user", "www-data"),
        ("comm", "python3"),
    ]);
}

#[test]
fn group_member_gets_listening_socket_and_serves_http() {
    serves_http_with("serve-http");
}

#[test]
fn multiprocessing_recv_handle_client_works() {
    serves_http_with("recv-handle");
}

#[test]
fn dual_stack_binding_grants_two_fds_in_config_order() {
    let env = TestEnv::new();
    let _daemon = env.serve(&env.config(
        r#"
[binding.web]
listen = ["0.0.0.0:80", "[::]:80"]
group = "www-data"
"#,
    ));
    let probe = env.probe(WWW_DATA, &env.socket("web"));
    probe.assert_granted(2);

    let v4 = &probe.fds[0];
    assert_eq!(v4.family, "AF_INET", "{probe:#?}");
    assert_eq!(v4.kind, "SOCK_STREAM");
    assert_eq!(v4.addr, ("0.0.0.0".to_owned(), 80));
    assert!(v4.listening);
    assert_eq!(v4.v6only, None);

    let v6 = &probe.fds[1];
    assert_eq!(v6.family, "AF_INET6", "{probe:#?}");
    assert_eq!(v6.kind, "SOCK_STREAM");
    assert_eq!(v6.addr, ("::".to_owned(), 80));
    assert!(v6.listening);
    assert_eq!(v6.v6only, Some(true), "[::]:80 must not also take IPv4");

    // Both are really listening (the daemon keeps its copies): connections complete.
    for addr in ["127.0.0.1:80", "[::1]:80"] {
        let addr = addr.parse().unwrap();
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    }
}

#[test]
fn udp_binding_grants_bound_datagram_socket() {
    let env = TestEnv::new();
    let _daemon = env.serve(&env.config(DNS_BINDING));
    let socket = env.socket("dns");

    let probe = env.probe(WWW_DATA, &socket);
    probe.assert_granted(1);
    let fd = &probe.fds[0];
    assert_eq!(fd.family, "AF_INET", "{probe:#?}");
    assert_eq!(fd.kind, "SOCK_DGRAM");
    assert_eq!(fd.addr, ("127.0.0.1".to_owned(), 53));
    assert!(!fd.listening);

    let mut echo = env.client(
        WWW_DATA,
        &["udp-echo".as_ref(), socket.as_os_str(), "1".as_ref()],
    );
    echo.expect_line("ready", EXIT_TIMEOUT);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    udp.send_to(b"ping from the test", "127.0.0.1:53").unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = udp.recv_from(&mut buf).expect("echo reply");
    assert_eq!(&buf[..n], b"ping from the test");
    assert_eq!(from, "127.0.0.1:53".parse().unwrap());
    echo.finish(EXIT_TIMEOUT).assert_success();
}

#[test]
fn command_line_bindings_without_config_file() {
    let env = TestEnv::new();
    let socket_dir = env.socket_dir();
    let _daemon = Daemon::start(&[
        "--user".as_ref(),
        "nobody".as_ref(),
        "--socket-dir".as_ref(),
        socket_dir.as_os_str(),
        "--bind".as_ref(),
        "http=127.0.0.1:80,tcp://127.0.0.1:8080".as_ref(),
        "--group".as_ref(),
        "www-data".as_ref(),
        "--backlog".as_ref(),
        "16".as_ref(),
    ]);
    let probe = env.probe(WWW_DATA, &env.socket("http"));
    probe.assert_granted(2);
    assert_eq!(probe.fds[0].addr, ("127.0.0.1".to_owned(), 80));
    assert_eq!(probe.fds[1].addr, ("127.0.0.1".to_owned(), 8080));

    // The backlog reaches listen(2): `ss` shows it as Send-Q of a listening socket.
    let ss = Command::new("ss").args(["-Hltn"]).output().unwrap();
    let ss = String::from_utf8_lossy(&ss.stdout);
    for port in [80, 8080] {
        let line = ss
            .lines()
            .find(|l| l.contains(&format!("127.0.0.1:{port} ")))
            .unwrap_or_else(|| panic!("no listener on port {port} in:\n{ss}"));
        let send_q: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(send_q[2], "16", "backlog of port {port}: {line}");
    }
}
