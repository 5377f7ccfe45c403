//! Socket options on adopted sockets (LISTEN_FDS, as systemd's fd store and socket units pass
//! them): what a bound socket can still change is changed to the binding's options, and a
//! socket that cannot match is refused (exit 4) naming the binding, the option and the fix.
//! The test keeps its own descriptor of the socket it passes: it shares the daemon's open
//! file description, so what the daemon changed is read back on it directly.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::*;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrIn6, bind, getsockopt, listen, setsockopt,
    socket, sockopt,
};

fn as_root(fd: &impl AsFd, config: &std::path::Path) -> Command {
    serve_with_listen_fds(config, &[("http", fd.as_fd())])
}

/// The daemon as systemd starts the unit: nobody, with the unit's two ambient capabilities.
fn as_unit_user(env: &TestEnv, fd: &impl AsFd, config: &std::path::Path) -> Command {
    if !env.socket_dir().exists() {
        env.create_socket_dir_for_nobody();
    }
    fs::set_permissions(config, fs::Permissions::from_mode(0o644)).unwrap();
    let (inh, ambient) = (
        format!("--inh-caps={UNIT_CAPS}"),
        format!("--ambient-caps={UNIT_CAPS}"),
    );
    let setpriv = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        &inh,
        &ambient,
        "--",
    ];
    let wrapper: Vec<&OsStr> = setpriv.iter().map(OsStr::new).collect();
    serve_with_listen_fds_under(&wrapper, config, &[("http", fd.as_fd())])
}

fn is_nonblocking(fd: &impl AsFd) -> bool {
    OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL).unwrap()).contains(OFlag::O_NONBLOCK)
}

/// A listening TCP socket on `[::]:80` with IPV6_V6ONLY `v6only`.
fn ipv6_listener(v6only: bool) -> OwnedFd {
    let fd = socket(
        AddressFamily::Inet6,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    setsockopt(&fd, sockopt::Ipv6V6Only, &v6only).unwrap();
    let any: SockaddrIn6 = "[::]:80".parse::<std::net::SocketAddrV6>().unwrap().into();
    bind(fd.as_raw_fd(), &any).unwrap();
    listen(&fd, Backlog::new(16).unwrap()).unwrap();
    fd
}

const HTTP: &str = "\n[binding.http]\nlisten = [\"127.0.0.1:80\"]\ngroup = \"www-data\"\n";
const HTTP6: &str = "\n[binding.http]\nlisten = [\"[::]:80\"]\ngroup = \"www-data\"\n";

#[test]
fn an_adopted_socket_gets_the_bindings_options_and_loses_the_ones_it_does_not_set() {
    let env = TestEnv::new();
    let listener = TcpListener::bind("127.0.0.1:80").unwrap();
    // As a previous configuration or a socket unit may have left it.
    setsockopt(&listener, sockopt::KeepAlive, &true).unwrap();
    setsockopt(&listener, sockopt::IpFreebind, &true).unwrap();
    let config = env.config(&format!("{HTTP}nonblocking = true\nmark = 7\n"));
    let daemon = Daemon::spawn(as_root(&listener, &config));
    daemon
        .wait_event("start", &[("binding", "http")])
        .assert_fields(&[("adopted", "1"), ("nonblocking", "1"), ("mark", "7")]);
    assert!(is_nonblocking(&listener));
    assert_eq!(getsockopt(&listener, sockopt::Mark).unwrap(), 7);
    assert!(!getsockopt(&listener, sockopt::KeepAlive).unwrap());
    assert!(!getsockopt(&listener, sockopt::IpFreebind).unwrap());
    let probe = env.probe(WWW_DATA, &env.socket("http"));
    probe.assert_granted(1);
    let ours = fs::metadata(format!("/proc/self/fd/{}", listener.as_raw_fd())).unwrap();
    assert_eq!(
        probe.fds[0].inode,
        std::os::unix::fs::MetadataExt::ino(&ours)
    );
}

#[test]
fn an_adopted_socket_is_made_blocking_again_when_the_binding_says_so() {
    let env = TestEnv::new();
    let listener = TcpListener::bind("127.0.0.1:80").unwrap();
    listener.set_nonblocking(true).unwrap();
    let _daemon = Daemon::spawn(as_root(&listener, &env.config(HTTP)));
    assert!(!is_nonblocking(&listener));
}

#[test]
fn an_adopted_socket_with_the_other_ipv6_only_setting_is_refused_with_the_fix() {
    let env = TestEnv::new();
    let dual = ipv6_listener(false);
    let config = env.config(HTTP6);
    Proc::spawn(as_root(&dual, &config), "portbinder serve")
        .finish(EXIT_TIMEOUT)
        .assert_error(
            4,
            &[
                "cannot give tcp://[::]:80 of binding `http`",
                config.to_str().unwrap(),
                "`ipv6_only = true`: the inherited socket has IPV6_V6ONLY 0, which no socket can change once it is bound",
                "fix: set `ipv6_only = false` for this binding, or have the socket unit bind it with BindIPv6Only=ipv6-only",
                "systemctl stop portbinder",
            ],
        );
    env.assert_no_socket_files();
    // The binding that says what the socket is adopts it.
    let config = env.config(&format!("{HTTP6}ipv6_only = false\n"));
    let daemon = Daemon::spawn(as_root(&dual, &config));
    daemon
        .wait_event("start", &[("binding", "http")])
        .assert_fields(&[("adopted", "1"), ("ipv6_only", "0")]);
}

#[test]
fn a_dual_stack_binding_refuses_an_adopted_ipv6_only_socket() {
    let env = TestEnv::new();
    let only = ipv6_listener(true);
    let config = env.config(&format!("{HTTP6}ipv6_only = false\n"));
    Proc::spawn(as_root(&only, &config), "portbinder serve")
        .finish(EXIT_TIMEOUT)
        .assert_error(
            4,
            &[
                "`ipv6_only = false`: the inherited socket has IPV6_V6ONLY 1",
                "BindIPv6Only=both",
            ],
        );
    env.assert_no_socket_files();
}

#[test]
fn a_mark_the_unprivileged_daemon_cannot_change_is_refused_and_a_matching_one_adopted() {
    let env = TestEnv::new();
    let listener = TcpListener::bind("127.0.0.1:80").unwrap();
    setsockopt(&listener, sockopt::Mark, &5).unwrap();
    let config = env.config(HTTP);
    Proc::spawn(as_unit_user(&env, &listener, &config), "portbinder serve")
        .finish(EXIT_TIMEOUT)
        .assert_error(
            4,
            &[
                "cannot give tcp://127.0.0.1:80 of binding `http`",
                "`mark` (not set): the inherited socket has the mark 5, and setting SO_MARK needs CAP_NET_ADMIN, which this process does not have",
                "fix: set `mark = 5` for this binding, or remove Mark= from the socket unit",
            ],
        );
    env.assert_no_socket_files();
    // Saying what the socket has needs no privilege.
    let config = env.config(&format!("{HTTP}mark = 5\n"));
    let daemon = Daemon::spawn(as_unit_user(&env, &listener, &config));
    daemon
        .wait_event("start", &[("binding", "http")])
        .assert_fields(&[("adopted", "1"), ("mark", "5")]);
    assert_eq!(getsockopt(&listener, sockopt::Mark).unwrap(), 5);
}

#[test]
fn a_device_the_unprivileged_daemon_cannot_unbind_is_refused_naming_it() {
    let env = TestEnv::new();
    let listener = TcpListener::bind("127.0.0.1:80").unwrap();
    setsockopt(&listener, sockopt::BindToDevice, &"lo".into()).unwrap();
    let config = env.config(HTTP);
    Proc::spawn(as_unit_user(&env, &listener, &config), "portbinder serve")
        .finish(EXIT_TIMEOUT)
        .assert_error(
            4,
            &[
                "cannot give tcp://127.0.0.1:80 of binding `http`",
                "`bind_to_device` (not set): the inherited socket is bound to the interface `lo`, and changing that needs CAP_NET_RAW, which this process does not have",
                "fix: set `bind_to_device = \"lo\"` for this binding",
            ],
        );
    env.assert_no_socket_files();
    let config = env.config(&format!("{HTTP}bind_to_device = \"lo\"\n"));
    let daemon = Daemon::spawn(as_unit_user(&env, &listener, &config));
    daemon
        .wait_event("start", &[("binding", "http")])
        .assert_fields(&[("adopted", "1"), ("bind_to_device", "lo")]);
}
