//! How the daemon starts: as root, as the run user with ambient capabilities (systemd's
//! AmbientCapabilities=), as the wrong user, or unable to drop; and what it does with stray
//! inherited descriptors.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::process::Command;

use common::*;

/// `setpriv SETPRIV_ARGS -- portbinder serve --config CONFIG`.
/// Starts the daemon as systemd does with `User=nobody` and `AmbientCapabilities=CAPS`
/// (`caps` as setpriv takes them, e.g. `+net_bind_service,+chown`): as nobody, with only
/// those capabilities, inheritable and ambient, in the socket directory that
/// RuntimeDirectory= creates for nobody.
fn serve_with_ambient_caps(env: &TestEnv, caps: &str) -> Daemon {
    Daemon::spawn(env.serve_as_nobody_with_caps(caps, HTTP_BINDING).0)
}

fn status_field(daemon: &Daemon, key: &str) -> String {
    daemon.proc_status().get(key).cloned().unwrap_or_default()
}

#[test]
fn ambient_capabilities_start_keeps_uid_and_clears_every_set() {
    let env = TestEnv::new();
    let daemon = serve_with_ambient_caps(&env, "+net_bind_service,+chown");
    // It bound port 80 and chowned the socket to www-data with only those two capabilities.
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(1);
    for caps in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(status_field(&daemon, caps), "0000000000000000", "{caps}");
    }
    assert_eq!(status_field(&daemon, "NoNewPrivs"), "1");
    assert_eq!(
        status_field(&daemon, "Uid")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["65534"; 4]
    );
    // Without CAP_SETPCAP the bounding set cannot be emptied; the drop line says so.
    daemon
        .wait_event("drop", &[("result", "verified"), ("uid", "65534")])
        .assert_fields(&[("caps", "none-bounding-kept"), ("no_new_privs", "1")]);
}

#[test]
fn ambient_capabilities_with_setpcap_also_empty_the_bounding_set() {
    let env = TestEnv::new();
    let daemon = serve_with_ambient_caps(&env, "+net_bind_service,+chown,+setpcap");
    for caps in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(&daemon, caps), "0000000000000000", "{caps}");
    }
    daemon
        .wait_event("drop", &[("result", "verified")])
        .assert_fields(&[("caps", "none")]);
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(1);
}

#[test]
fn non_root_start_as_another_user_is_refused() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    let outcome = Proc::spawn(
        serve_under_setpriv(&["--reuid=33", "--regid=33", "--clear-groups"], &config),
        "portbinder serve as www-data",
    )
    .finish(EXIT_TIMEOUT);
    outcome.assert_error(4, &["started as uid 33 without root", "`nobody`"]);
    env.assert_no_socket_files();
}

#[test]
fn failed_drop_exits_5_logs_it_and_leaves_no_socket_file() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    let offset = syslog_offset();
    // Root without CAP_SETUID: it binds and creates its socket, then setresuid fails.
    let outcome = Proc::spawn(
        serve_under_setpriv(&["--bounding-set=-setuid"], &config),
        "portbinder serve without CAP_SETUID",
    )
    .finish(EXIT_TIMEOUT);
    outcome.assert_error(
        5,
        &[
            "cannot drop privileges: setresuid failed",
            "Operation not permitted",
        ],
    );
    env.assert_no_socket_files();
    let logged = syslog_lines_since(offset);
    assert!(
        logged.iter().any(|l| l.starts_with("authpriv.err ")
            && l.contains("event=drop result=failed")
            && l.contains("setresuid failed: Operation not permitted")),
        "{logged:#?}"
    );
    assert!(
        !logged.iter().any(|l| l.contains("event=ready")),
        "{logged:#?}"
    );
}

#[test]
fn stray_inherited_descriptors_are_closed() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    let secret = env.path().join("secret");
    fs::write(&secret, "root only\n").unwrap();
    let file = fs::File::open(&secret).unwrap();
    let raw = file.as_raw_fd();
    let mut cmd = serve_command(&config);
    // As a careless parent would leak it.
    inherit_fd(&mut cmd, raw, 9);
    let daemon = Daemon::spawn(cmd);
    let links = proc_fd_links(daemon.pid());
    assert!(
        !links
            .iter()
            .any(|(_, target)| OsStr::new(target) == secret.as_os_str()),
        "the daemon kept an inherited fd to {}: {links:?}",
        secret.display()
    );
}

#[test]
fn example_server_from_the_readme_serves_port_80() {
    let env = TestEnv::new();
    let _daemon = env.serve(&env.config(HTTP_BINDING));
    let script = env.path().join("hello_server.py");
    fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello_server.py"),
        &script,
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(&script).arg(env.socket("http")).env_clear();
    WWW_DATA.apply(&mut cmd);
    let mut server = Proc::spawn(cmd, "examples/hello_server.py");
    server.expect_line("serving on ('127.0.0.1', 80) as uid 33", EXIT_TIMEOUT);
    let reply = http_get("127.0.0.1:80");
    assert!(reply.starts_with("HTTP/1.0 200"), "{reply}");
    assert!(
        reply.ends_with("hello from an unprivileged server on port 80\n"),
        "{reply}"
    );
}

#[test]
fn example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/portbinder.toml");
    // The example names the packaged user `portbinder`, which test machines lack.
    let outcome = run_check(&["--config", path, "--user", "nobody"]);
    outcome.assert_success();
    assert_eq!(
        outcome.stdout,
        format!("portbinder: {path}: ok (1 binding)\n")
    );
}

#[test]
fn a_link_planted_in_the_socket_directory_is_replaced_never_followed() {
    let env = TestEnv::new();
    env.create_socket_dir_for_nobody();
    // The run user owns the directory and plants a link where the socket will go, aiming
    // the daemon's chown/chmod at a root-only file.
    let target = env.path().join("root-only");
    fs::write(&target, "secret\n").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&target, env.socket("http")).unwrap();
    let config = env.config(HTTP_BINDING);
    let _daemon = env.serve(&config);
    let meta = fs::metadata(&target).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o600, 0, 0),
        "the link's target was changed"
    );
    let sock = fs::symlink_metadata(env.socket("http")).unwrap();
    assert!(
        sock.file_type().is_socket(),
        "the link was replaced by the socket"
    );
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(1);
    // No staging directory is left behind: the socket, the daemon's lock file and its record
    // of the sockets it bound.
    let mut names: Vec<_> = fs::read_dir(env.socket_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [".portbinder.bound", ".portbinder.lock", "http.sock"]
    );
}

#[test]
fn a_failure_on_the_second_socket_removes_the_first() {
    let env = TestEnv::new();
    env.create_socket_dir_for_nobody();
    // `b.sock` is a directory: renaming the second socket into place fails (EISDIR).
    fs::create_dir(env.socket("b")).unwrap();
    let config = env.config(
        r#"
[binding.a]
listen = ["127.0.0.1:80"]
group = "www-data"

[binding.b]
listen = ["127.0.0.1:81"]
group = "www-data"
"#,
    );
    let outcome = serve_expect_failure(&config);
    outcome.assert_error(4, &["rename into place", "b.sock", "Is a directory"]);
    let mut names: Vec<_> = fs::read_dir(env.socket_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    // The (empty, 0600) lock file stays by design: removing it would race with the next
    // daemon taking it; so does the record of the sockets bound, written before the sockets'
    // files (it names sockets that are closed now, which no one can bind again).
    assert_eq!(
        names,
        [".portbinder.bound", ".portbinder.lock", "b.sock"],
        "a.sock and the staging directories are gone"
    );
}

#[test]
fn a_second_daemon_on_the_same_socket_directory_is_refused() {
    let env = TestEnv::new();
    let first = env.config(HTTP_BINDING);
    let _daemon = env.serve(&first);
    let other = env.path().join("other.toml");
    fs::write(
        &other,
        format!(
            "{}\n[binding.http]\nlisten = [\"127.0.0.1:8080\"]\ngroup = \"www-data\"\n",
            env.globals()
        ),
    )
    .unwrap();
    fs::set_permissions(&other, fs::Permissions::from_mode(0o600)).unwrap();
    let outcome = serve_expect_failure(&other);
    outcome.assert_error(
        4,
        &[
            env.socket_dir().to_str().unwrap(),
            "in use by another portbinder",
        ],
    );
    // The first daemon's socket is untouched and still its own: it still grants port 80.
    let probe = env.probe(WWW_DATA, &env.socket("http"));
    probe.assert_granted(1);
    assert_eq!(probe.fds[0].addr, ("127.0.0.1".to_owned(), 80));
}
