//! Adoption of inherited sockets (LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES, as systemd passes
//! them): the daemon hands out the very socket it inherited, and refuses one that does not
//! match the binding.

mod common;

use std::fs;
use std::net::{TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use common::*;

const HTTP_BINDING: &str = r#"
[binding.http]
listen = ["127.0.0.1:80"]
group = "www-data"
"#;

/// `portbinder serve <args>` with `fd` inherited as fd 3, LISTEN_FDS=1 and LISTEN_FDNAMES
/// `names`. LISTEN_PID must be the daemon's own pid, known only once it runs: `sh` sets it to
/// its `$$` and then execs the daemon, which keeps that pid.
fn inheriting_command(fd: RawFd, names: &str, args: &[&std::ffi::OsStr]) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"LISTEN_PID=$$ exec "$0" "$@""#)
        .arg(binary())
        .arg("serve")
        .args(args)
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", names);
    // SAFETY: the hook runs in the forked child before exec and only makes the
    // async-signal-safe calls dup2 and fcntl on fds that stay open in the parent meanwhile.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto another number clears FD_CLOEXEC; if the socket already is fd 3, that
            // has to be done by hand.
            let rc = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// The inode of the socket behind `fd` in this process.
fn socket_inode(fd: RawFd) -> u64 {
    fs::metadata(format!("/proc/self/fd/{fd}")).unwrap().ino()
}

#[test]
fn inherited_socket_is_granted_as_is() {
    let env = TestEnv::new();
    let listener = TcpListener::bind("127.0.0.1:80").unwrap();
    let config = env.config(HTTP_BINDING);
    let _daemon = Daemon::spawn(inheriting_command(
        listener.as_raw_fd(),
        "http",
        &["--config".as_ref(), config.as_os_str()],
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

#[test]
fn inherited_socket_of_the_wrong_type_is_refused() {
    let env = TestEnv::new();
    let datagram = UdpSocket::bind("127.0.0.1:80").unwrap();
    let config = env.config(HTTP_BINDING);
    let cmd = inheriting_command(
        datagram.as_raw_fd(),
        "http",
        &["--config".as_ref(), config.as_os_str()],
    );
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
    assert!(
        env.socket_files().is_empty(),
        "socket files left behind: {:?}",
        env.socket_files()
    );
}
