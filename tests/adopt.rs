//! Adoption of inherited sockets (LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES, as systemd passes
//! them): the daemon hands out the very socket it inherited, and refuses one that does not
//! match the binding.

mod common;

use std::fs;
use std::net::{TcpListener, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;

use common::sockopts::listen_backlog;
use common::*;

/// The inode of the socket behind `fd` in this process.
fn socket_inode(fd: RawFd) -> u64 {
    fs::metadata(format!("/proc/self/fd/{fd}")).unwrap().ino()
}

#[test]
fn inherited_socket_is_granted_as_is() {
    let env = TestEnv::new();
    let listener = TcpListener::bind("127.0.0.1:80").unwrap();
    let config = env.config(HTTP_BINDING);
    let _daemon = Daemon::spawn(serve_with_listen_fds(
        &config,
        &[("http", listener.as_fd())],
    ));

    let probe = env.probe(WWW_DATA, &env.socket("http"));
    probe.assert_granted(1);
    let fd = &probe.fds[0];
    assert_eq!(
        fd.inode,
        socket_inode(listener.as_raw_fd()),
        "the granted socket is not the inherited one: {probe:#?}"
    );
    assert!(fd.listening);
    assert_eq!(fd.addr, ("127.0.0.1".to_owned(), 80));
}

/// An inherited socket that already listens (a socket unit's, or one from the fd store) is
/// brought to the binding's backlog, as docs/PROTOCOL.md says of every socket handed out.
#[test]
fn an_inherited_listening_socket_gets_the_bindings_backlog() {
    use nix::sys::socket::{Backlog, listen};
    let env = TestEnv::new();
    let socket = std::net::TcpListener::bind("127.0.0.1:80").unwrap();
    listen(&socket, Backlog::new(5).unwrap()).unwrap();
    assert_eq!(listen_backlog(80), 5);
    let config = env.config(&http_binding("backlog = 16"));
    let _daemon = Daemon::spawn(serve_with_listen_fds(&config, &[("http", socket.as_fd())]));
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(1);
    assert_eq!(listen_backlog(80), 16);
}

#[test]
fn inherited_socket_of_the_wrong_type_is_refused() {
    let env = TestEnv::new();
    let datagram = UdpSocket::bind("127.0.0.1:80").unwrap();
    let config = env.config(HTTP_BINDING);
    let cmd = serve_with_listen_fds(&config, &[("http", datagram.as_fd())]);
    Proc::spawn(cmd, "portbinder serve")
        .finish(EXIT_TIMEOUT)
        .assert_error(
            4,
            &[
                "inherited fd 3",
                "`http`",
                "udp://127.0.0.1:80",
                "tcp://127.0.0.1:80",
            ],
        );
    env.assert_no_socket_files();
}
