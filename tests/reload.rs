//! Reload (SIGHUP, `systemctl reload`): what the running daemon applies without a restart.
//! Who may fetch, the socket file's mode, the backlog and the options a bound socket can take
//! change on the very sockets the programs hold (same inodes, same daemon); a removed binding
//! is closed, its file removed and its fd-store entry dropped. systemd hears RELOADING=1 with
//! MONOTONIC_USEC=, then READY=1 with a STATUS= that says what happened. What is refused is
//! in tests/reload_refused.rs.

mod common;

use std::os::unix::fs::MetadataExt;

use common::fake_systemd::FakeSystemd;
use common::reload::{mode_of, outcome, readable_config, reload};
use common::sockopts::{listen_backlog, read_back};
use common::*;
use serde_json::Value;

#[test]
fn an_allow_users_change_takes_effect_without_a_restart_or_a_new_socket() {
    let env = TestEnv::new();
    let config = readable_config(&env, HTTP_FOR_ANYONE);
    let mut daemon = env.serve(&config);
    let granted = env
        .probe(WWW_DATA, &env.socket("http"))
        .assert_granted(1)
        .inodes();
    let file_inode = std::fs::metadata(env.socket("http")).unwrap().ino();
    let denied = env.probe(DAEMON, &env.socket("http"));
    assert!(
        denied
            .assert_denied()
            .reason
            .as_deref()
            .unwrap()
            .contains("uid 1 may not fetch binding `http`"),
        "{denied:?}"
    );

    readable_config(
        &env,
        &format!("{HTTP_FOR_ANYONE}allow_users = [\"daemon\"]\n"),
    );
    let lines = reload(&daemon);
    assert_eq!(lines.len(), 1, "{lines:?}");
    outcome(&lines).assert_fields(&[
        ("event", "reload"),
        ("signal", "SIGHUP"),
        ("result", "applied"),
        ("changes", "binding `http`: allow_users, allow_groups"),
    ]);

    // The same daemon, the same Unix socket, and the very socket www-data was granted.
    assert!(daemon.is_running(), "{}", daemon.report());
    assert_eq!(daemon.events_of("ready").len(), 1, "{}", daemon.report());
    let now_granted = env.probe(DAEMON, &env.socket("http"));
    assert_eq!(now_granted.assert_granted(1).inodes(), granted);
    assert_eq!(
        std::fs::metadata(env.socket("http")).unwrap().ino(),
        file_inode
    );
    daemon.wait_event(
        "grant",
        &[("binding", "http"), ("uid", "1"), ("user", "daemon")],
    );
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(1);

    // Taking it back works the same way.
    readable_config(&env, HTTP_FOR_ANYONE);
    outcome(&reload(&daemon)).assert_fields(&[("result", "applied")]);
    env.probe(DAEMON, &env.socket("http")).assert_denied();
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.report());
}

#[test]
fn mode_backlog_and_nonblocking_change_on_the_running_sockets() {
    let env = TestEnv::new();
    let config = readable_config(&env, HTTP_BINDING);
    let daemon = env.serve(&config);
    let before = env
        .probe(WWW_DATA, &env.socket("http"))
        .assert_granted(1)
        .inodes();
    assert_eq!(mode_of(&env.socket("http")), 0o660);
    assert_eq!(listen_backlog(80), 1024);
    assert_eq!(read_back(&env, "http", &[])["fds"][0]["nonblocking"], false);

    readable_config(
        &env,
        &http_binding("mode = \"0666\"\nbacklog = 7\nnonblocking = true"),
    );
    outcome(&reload(&daemon)).assert_fields(&[
        ("result", "applied"),
        (
            "changes",
            "binding `http`: mode; binding `http`: backlog; binding `http`: nonblocking",
        ),
    ]);
    assert_eq!(mode_of(&env.socket("http")), 0o666);
    assert_eq!(listen_backlog(80), 7);
    // A client sees O_NONBLOCK on the socket it is granted: the same socket as before.
    assert_eq!(read_back(&env, "http", &[])["fds"][0]["nonblocking"], true);
    let after = env.probe(WWW_DATA, &env.socket("http"));
    assert_eq!(after.assert_granted(1).inodes(), before);
    // The daemon itself, not only the file's mode, still decides: daemon (uid 1) may now
    // connect, and is denied.
    env.probe(DAEMON, &env.socket("http")).assert_denied();
}

/// A holder may set O_APPEND and O_ASYNC on the shared socket (the kernel takes them on a
/// socket, and F_GETFL reports them) and flip O_NONBLOCK. The seccomp filter lets a reload
/// write O_NONBLOCK alone: one that wrote back every flag it read was killed (SIGSYS) by the
/// next reload that changed an option of the binding. The reload is applied, and the socket's
/// file status flags are the binding's again: blocking, and nothing else.
#[test]
fn a_holders_o_append_and_o_async_do_not_make_a_reload_kill_the_daemon() {
    let env = TestEnv::new();
    let config = readable_config(&env, HTTP_BINDING);
    let mut daemon = env.serve(&config);
    let socket = env.socket("http");
    let inode = env.probe(WWW_DATA, &socket).assert_granted(1).inodes()[0];
    let set: Value = env
        .client(
            WWW_DATA,
            &[
                "set-flags".as_ref(),
                socket.as_os_str(),
                "append,async,nonblock".as_ref(),
            ],
        )
        .finish(EXIT_TIMEOUT)
        .json();
    let tampered = libc::O_APPEND | libc::O_ASYNC | libc::O_NONBLOCK;
    assert_eq!(
        set["flags"].as_i64().unwrap() as i32 & tampered,
        tampered,
        "{set}"
    );
    assert_eq!(
        open_flags(daemon.pid(), inode).unwrap() & tampered,
        tampered
    );

    readable_config(&env, &http_binding("keepalive = true"));
    outcome(&reload(&daemon)).assert_fields(&[
        ("result", "applied"),
        ("changes", "binding `http`: keepalive"),
    ]);
    assert!(daemon.is_running(), "{}", daemon.report());
    let flags = open_flags(daemon.pid(), inode).unwrap();
    assert_eq!(flags & tampered, 0, "flags {flags:o}");
    let fd = &read_back(&env, "http", &[])["fds"][0];
    assert_eq!(
        (&fd["keepalive"], &fd["nonblocking"]),
        (&true.into(), &false.into()),
        "{fd}"
    );
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.report());
}

/// CLOCK_MONOTONIC now, in microseconds (the clock MONOTONIC_USEC= is read from).
fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `now` is.
    let ret = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    assert_eq!(ret, 0);
    now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000
}

#[test]
fn a_removed_binding_is_closed_its_file_removed_and_it_leaves_the_fd_store() {
    let env = TestEnv::new();
    let systemd = FakeSystemd::at_path(env.path());
    let config = readable_config(&env, &format!("{DNS_BINDING}{HTTP_BINDING}"));
    let mut daemon = Daemon::spawn(systemd.notifying(serve_command(&config)));
    systemd.expect("FDSTORE=1\nFDNAME=dns");
    let http_stored = systemd.expect("FDSTORE=1\nFDNAME=http");
    systemd.expect("READY=1\nSTATUS=serving 2 bindings: 0 grants, 0 denials");
    let fds = daemon.fd_count();

    readable_config(&env, HTTP_BINDING);
    let asked = monotonic_usec();
    let lines = reload(&daemon);
    outcome(&lines).assert_fields(&[("result", "applied"), ("changes", "binding `dns`: removed")]);

    // systemd is told the reload began (with the time, as sd_notify(3) asks), that the
    // binding's sockets leave the store, and that the daemon is ready again, and how.
    let reloading = systemd.recv();
    let usec = reloading
        .text
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .unwrap_or_else(|| panic!("{reloading:?}"));
    let usec: u64 = usec.parse().unwrap();
    assert!(asked <= usec && usec <= monotonic_usec(), "{usec}");
    systemd.expect("FDSTOREREMOVE=1\nFDNAME=dns");
    systemd
        .expect("READY=1\nSTATUS=reload applied 1 change; serving 1 binding: 0 grants, 0 denials");
    daemon.wait_event("fdstore", &[("fds", "0"), ("removed", "dns")]);

    // Its socket and its Unix socket are closed, its file is gone, and a client is told
    // there is no such binding.
    daemon.wait_fd_count(fds - 2);
    assert!(!env.socket("dns").exists());
    let out =
        Proc::spawn(env.exec_as(WWW_DATA, "dns", &["/bin/true"]), "exec dns").finish(EXIT_TIMEOUT);
    out.assert_error(7, &["binding `dns`", "no binding at"]);
    // Nothing listens on its address any more: the daemon held the only socket.
    assert!(std::net::UdpSocket::bind("127.0.0.1:53").is_ok());

    // The binding that stays is served on the sockets the store holds.
    let granted = env.probe(WWW_DATA, &env.socket("http"));
    assert_eq!(granted.assert_granted(1).inodes(), http_stored.inodes());
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.report());
    // (A STATUS= update with the counters may come first.)
    let stopping = std::iter::repeat_with(|| systemd.recv())
        .find(|m| m.text.starts_with("STOPPING=1"))
        .unwrap();
    assert_eq!(
        stopping.text,
        "STOPPING=1\nSTATUS=stopping on SIGTERM after 1 grants, 0 denials"
    );
    env.assert_no_socket_files();
}

#[test]
fn a_configuration_from_flags_or_an_unchanged_file_reloads_as_unchanged() {
    let env = TestEnv::new();
    let dir = env.socket_dir();
    let mut daemon = Daemon::start(&[
        "--bind",
        "http=127.0.0.1:80",
        "--group",
        "www-data",
        "--user",
        "nobody",
        "--socket-dir",
        dir.to_str().unwrap(),
        "--log",
        "syslog",
    ]);
    outcome(&reload(&daemon)).assert_fields(&[("signal", "SIGHUP"), ("result", "unchanged")]);
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(1);
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.report());

    let config = readable_config(&env, HTTP_BINDING);
    let daemon = env.serve(&config);
    let lines = reload(&daemon);
    assert_eq!(lines.len(), 1, "{lines:?}");
    outcome(&lines).assert_fields(&[("result", "unchanged")]);
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(1);
}

/// The file named through a symlink (in a directory only root can change), and edited as many
/// editors and tools save (a new file renamed over the old one: a new inode in the same
/// directory): the reload resolves the link inside the sandbox, reads the new file and applies
/// it.
#[test]
fn a_file_replaced_by_rename_and_named_through_a_symlink_reloads() {
    let env = TestEnv::new();
    let real = readable_config(&env, HTTP_FOR_ANYONE);
    let link = env.path().join("current.toml");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let daemon = env.serve(&link);
    env.probe(DAEMON, &env.socket("http")).assert_denied();

    let draft = env.path().join(".portbinder.toml.swp");
    std::fs::rename(
        readable_config(
            &env,
            &format!("{HTTP_FOR_ANYONE}allow_users = [\"daemon\"]\n"),
        ),
        &draft,
    )
    .unwrap();
    readable_config(&env, HTTP_FOR_ANYONE);
    let old_inode = std::fs::metadata(&real).unwrap().ino();
    std::fs::rename(&draft, &real).unwrap();
    assert_ne!(std::fs::metadata(&real).unwrap().ino(), old_inode);
    outcome(&reload(&daemon)).assert_fields(&[("result", "applied")]);
    env.probe(DAEMON, &env.socket("http")).assert_granted(1);
}
