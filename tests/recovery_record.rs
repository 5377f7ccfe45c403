//! Recovery hands out only sockets portbinder bound itself. Every start as root records the
//! SO_COOKIE of each binding's sockets (bound, adopted or recovered) in `.portbinder.bound`,
//! a root-owned 0600 file in the socket directory; a socket found on a configured address is
//! recovered only when that record names it for the binding and the address, and the record
//! is trusted only if no one but root can have written it. So another server's socket is
//! refused whoever holds it, even a worker the binding grants on a privileged port, and its
//! options are left as they were.

mod common;

use std::fs;
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::holder::share_with;
use common::*;
use nix::sys::signal::Signal;

/// The record's name in the socket directory.
const RECORD: &str = ".portbinder.bound";

fn record_path(env: &TestEnv) -> PathBuf {
    env.socket_dir().join(RECORD)
}

/// The record's sockets, as (binding, address, cookie), sorted.
fn recorded(env: &TestEnv) -> Vec<(String, String, u64)> {
    let text = fs::read_to_string(record_path(env)).unwrap();
    let mut sockets: Vec<_> = text
        .lines()
        .filter_map(|l| l.strip_prefix("socket "))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 3, "record line {l:?}");
            (f[1].to_owned(), f[2].to_owned(), f[0].parse().unwrap())
        })
        .collect();
    sockets.sort();
    sockets
}

/// The cookies of the sockets www-data is granted on binding `name`.
fn granted_cookies(env: &TestEnv, name: &str) -> Vec<u64> {
    env.probe(WWW_DATA, &env.socket(name))
        .fds
        .iter()
        .map(|f| f.cookie)
        .collect()
}

/// A refused start: exit 4, `needles`, and the hint of the failed bind.
fn assert_refused(config: &Path, port: u16, needles: &[&str]) {
    let hint = format!("`ss -lntup 'sport = :{port}'` shows its owner");
    let mut all = needles.to_vec();
    all.push(&hint);
    serve_expect_failure(config).assert_error(4, &all);
}

#[test]
fn each_start_as_root_records_its_sockets_in_a_file_only_root_can_have_written() {
    let env = TestEnv::new();
    let both = env.config(&format!("{DUAL_STACK_HTTP}{DNS_BINDING}"));
    let mut daemon = env.serve(&both);
    let meta = fs::symlink_metadata(record_path(&env)).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777, meta.nlink()),
        (0, 0, 0o600, 1)
    );
    let http = granted_cookies(&env, "http");
    let dns = granted_cookies(&env, "dns");
    let mut expected = vec![
        ("dns".to_owned(), "udp://127.0.0.1:53".to_owned(), dns[0]),
        ("http".to_owned(), "tcp://127.0.0.1:80".to_owned(), http[0]),
        ("http".to_owned(), "tcp://[::1]:80".to_owned(), http[1]),
    ];
    expected.sort();
    assert_eq!(recorded(&env), expected);
    // It stays at stop: the apps may still hold the sockets.
    daemon.stop();
    assert!(record_path(&env).exists());

    // A binding removed from the configuration drops out of the record.
    let _again = env.serve(&env.config(DNS_BINDING));
    let dns = granted_cookies(&env, "dns");
    assert_eq!(
        recorded(&env),
        [("dns".to_owned(), "udp://127.0.0.1:53".to_owned(), dns[0])]
    );
}

/// A socket adopted from LISTEN_FDS is recorded too, and so is a recovered one (its cookie
/// does not change), so that it is recovered again after the next crash.
#[test]
fn adopted_and_recovered_sockets_are_recorded_and_recovered_again() {
    let env = TestEnv::new();
    let listener = TcpListener::bind("127.0.0.1:80").unwrap();
    let config = env.config(HTTP_BINDING);
    let mut first = Daemon::spawn(serve_with_listen_fds(
        &config,
        &[("http", listener.as_fd())],
    ));
    let cookie = granted_cookies(&env, "http")[0];
    let http = |cookie| vec![("http".to_owned(), "tcp://127.0.0.1:80".to_owned(), cookie)];
    assert_eq!(recorded(&env), http(cookie));
    let _app = env.serving_app(WWW_DATA, "serve-http", "http");
    drop(listener);
    first.stop_with(Signal::SIGKILL);

    for round in ["first", "second"] {
        let mut daemon = env.serve(&config);
        daemon
            .wait_event("recovered", &[("binding", "http")])
            .assert_fields(&[("rule", "granted"), ("uid", "33")]);
        assert_eq!(granted_cookies(&env, "http"), [cookie], "{round} recovery");
        assert_eq!(recorded(&env), http(cookie), "{round} recovery");
        daemon.stop_with(Signal::SIGKILL);
    }
}

/// Reads TCP_DEFER_ACCEPT of the test's own socket.
fn defer_accept(fd: &impl AsRawFd) -> i32 {
    let mut value: libc::c_int = -1;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes (an int) into `value`, which lives for the
    // call.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    value
}

/// The review's case: a root web server (nginx, Apache on Debian) binds the binding's port 80
/// itself, with options of its own, and its workers run as www-data, a uid the binding
/// grants. Portbinder served the address before (its record exists), but never this socket:
/// it is not recovered, and the master's options are as it set them.
#[test]
fn another_servers_socket_shared_with_a_granted_worker_is_neither_recovered_nor_changed() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    env.serve(&config).stop();
    assert!(record_path(&env).exists());

    let master = TcpListener::bind("127.0.0.1:80").unwrap();
    master.set_nonblocking(true).unwrap();
    let five: libc::c_int = 5;
    // SAFETY: the kernel reads one int from `five`, which lives for the call.
    let rc = unsafe {
        libc::setsockopt(
            master.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&raw const five).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    let deferred = defer_accept(&master);
    assert!(deferred > 0);
    let worker = share_with(WWW_DATA, master.as_fd());

    assert_refused(
        &config,
        80,
        &[
            &format!(
                "not recovering tcp://127.0.0.1:80 for binding `http` from pid {} (uid 33",
                worker.pid()
            ),
            "the socket on tcp://127.0.0.1:80 was not bound by portbinder",
            &format!("no record of it in {}", record_path(&env).display()),
            "another server holds the address; stop it, or give the binding another address",
        ],
    );
    // The master's socket is as it made it: still non-blocking, still deferring accepts.
    let flags = nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_GETFL).unwrap();
    assert_ne!(flags & libc::O_NONBLOCK, 0, "O_NONBLOCK was cleared");
    assert_eq!(
        defer_accept(&master),
        deferred,
        "TCP_DEFER_ACCEPT was changed"
    );
    assert!(std::net::TcpStream::connect("127.0.0.1:80").is_ok());
}

/// The same on a port anyone may bind, for a server running entirely as a uid the binding
/// grants: the first start of this version finds no record at all, and says so.
#[test]
fn a_socket_a_granted_user_bound_itself_is_not_recovered() {
    let env = TestEnv::new();
    let holder = env.hold(WWW_DATA, "tcp", "127.0.0.1", 8080, &[]);
    assert_refused(
        &env.config(HTTP_8080),
        8080,
        &[
            &format!(
                "not recovering tcp://127.0.0.1:8080 for binding `http` from pid {} (uid 33",
                holder.held.pid
            ),
            &format!(
                "there is no record of the sockets portbinder bound ({} does not exist",
                record_path(&env).display()
            ),
        ],
    );
}

/// Writes `text` as the record, owned by `uid`, with `mode`, renamed into place as the run
/// user (the socket directory's owner) can do.
fn plant_record(env: &TestEnv, text: &str, uid: u32, mode: u32) {
    let planted = env.socket_dir().join("planted");
    fs::write(&planted, text).unwrap();
    std::os::unix::fs::chown(&planted, Some(uid), Some(uid)).unwrap();
    fs::set_permissions(&planted, fs::Permissions::from_mode(mode)).unwrap();
    fs::rename(&planted, record_path(env)).unwrap();
}

/// The run user owns the socket directory: it can remove the record, replace it with a file
/// of its own, or link it; none of those is trusted, each refusal says why, and the genuine
/// record recovers the socket.
#[test]
fn a_record_the_run_user_could_have_written_or_kept_is_not_trusted() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    let mut first = env.serve(&config);
    let _app = env.serving_app(WWW_DATA, "serve-http", "http");
    first.stop_with(Signal::SIGKILL);
    let genuine = fs::read_to_string(record_path(&env)).unwrap();
    let path = record_path(&env);
    let shown = path.display();
    let refusal = "not recovering tcp://127.0.0.1:80 for binding `http` from pid";

    plant_record(&env, &genuine, NOBODY.uid, 0o600);
    assert_refused(
        &config,
        80,
        &[
            refusal,
            &format!("the record {shown} is owned by uid 65534, not root"),
        ],
    );
    plant_record(&env, &genuine, 0, 0o644);
    assert_refused(&config, 80, &[refusal, "has mode 0644"]);
    plant_record(&env, &genuine, 0, 0o600);
    let link = env.socket_dir().join("kept");
    fs::hard_link(&path, &link).unwrap();
    assert_refused(&config, 80, &[refusal, "has 2 links"]);
    fs::remove_file(&link).unwrap();
    fs::remove_file(&path).unwrap();
    assert_refused(&config, 80, &[refusal, &format!("{shown} does not exist")]);

    plant_record(&env, &genuine, 0, 0o600);
    env.serve(&config)
        .wait_event("recovered", &[("binding", "http")]);
}

/// The run user, which owns the socket directory, can keep the record from being written (a
/// directory of its own where the new record is made). That must not keep the daemon from
/// starting: it serves, warns that this start's sockets are not recorded and what that costs,
/// and removes the old record, so that the next recovery fails closed rather than trusting a
/// record of an earlier start.
#[test]
fn a_record_that_cannot_be_written_is_a_warning_and_no_stale_record_is_left() {
    let env = TestEnv::new();
    let config = env.config(HTTP_8080);
    env.serve(&config).stop();
    assert!(record_path(&env).exists());
    let blocker = env.socket_dir().join(".portbinder.bound.new");
    fs::create_dir(&blocker).unwrap();
    fs::write(blocker.join("kept"), "").unwrap();
    for path in [&blocker, &blocker.join("kept")] {
        std::os::unix::fs::chown(path, Some(NOBODY.uid), Some(NOBODY.uid)).unwrap();
    }

    let daemon = env.serve(&config);
    let warning = daemon.wait_event("error", &[("op", "record")]);
    warning.assert_fields(&[("record", &record_path(&env).display().to_string())]);
    for (field, needle) in [
        ("error", "cannot remove the stale"),
        ("action", "serving; this start's sockets are not recorded"),
        ("action", "cannot be recovered"),
    ] {
        let value = warning.get(field).unwrap_or_default();
        assert!(
            value.contains(needle),
            "{needle:?} in {field}= of {:?}",
            warning.line
        );
    }
    assert!(!record_path(&env).exists(), "a stale record was left");
    assert_eq!(granted_cookies(&env, "http").len(), 1);
}
