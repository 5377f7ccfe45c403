//! Privilege drop: once ready, the daemon has no root ids, no groups, no capabilities and
//! no_new_privs set; its socket files carry the configured owner, group and mode.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::*;

const NO_CAPS: &str = "0000000000000000";

/// Asserts the credentials of a daemon running as nobody (65534:65534) from /proc/PID/status.
fn assert_unprivileged(daemon: &Daemon) {
    let status = daemon.proc_status();
    let field = |k: &str| status.get(k).map(String::as_str).unwrap_or("<missing>");
    let ids = |k: &str| field(k).split_whitespace().collect::<Vec<_>>();
    let report = || format!("{status:#?}\n{}", daemon.report());
    assert_eq!(
        ids("Uid"),
        ["65534"; 4],
        "real, effective, saved, fs uid\n{}",
        report()
    );
    assert_eq!(
        ids("Gid"),
        ["65534"; 4],
        "real, effective, saved, fs gid\n{}",
        report()
    );
    assert_eq!(field("Groups"), "", "supplementary groups\n{}", report());
    for caps in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(field(caps), NO_CAPS, "{caps}\n{}", report());
    }
    assert_eq!(field("NoNewPrivs"), "1", "{}", report());
}

/// Asserts that `path` is a Unix socket with owner `uid`, group `gid` and permission `mode`.
fn assert_socket_file(path: &Path, uid: u32, gid: u32, mode: u32) {
    let meta = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        meta.file_type().is_socket(),
        "{} is not a socket",
        path.display()
    );
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (uid, gid, mode),
        "owner, group and mode of {}",
        path.display()
    );
}

#[test]
fn daemon_drops_every_privilege() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(ANY_ADDRESS_HTTP));
    assert_unprivileged(&daemon);

    // Defaults: socket owned by the run user, group of the binding, mode 0660; the socket
    // directory created for the run user with mode 0755.
    assert_socket_file(&env.socket("http"), 65534, 33, 0o660);
    let dir = fs::symlink_metadata(env.socket_dir()).unwrap();
    assert!(dir.is_dir());
    assert_eq!((dir.uid(), dir.mode() & 0o7777), (65534, 0o755));

    // And it still serves after the drop.
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(2);
    assert_unprivileged(&daemon);
}

#[test]
fn socket_files_take_the_configured_group_and_mode() {
    let env = TestEnv::new();
    let _daemon = env.serve(&env.config(
        r#"
[binding.web]
listen = ["127.0.0.1:80"]
group = "www-data"
mode = "0640"

[binding.api]
listen = ["127.0.0.1:8080"]
group = "33"
mode = 0o600

[binding.ops]
listen = ["127.0.0.1:8081"]
group = "nogroup"
mode = "0666"
"#,
    ));
    assert_socket_file(&env.socket("web"), 65534, 33, 0o640);
    assert_socket_file(&env.socket("api"), 65534, 33, 0o600);
    assert_socket_file(&env.socket("ops"), 65534, 65534, 0o666);

    // 0640: the group may not connect (no write permission), so www-data is refused by the
    // kernel; 0666 lets anyone reach the daemon, which grants the binding's group.
    let refused = env.probe(WWW_DATA, &env.socket("web"));
    assert_eq!(refused.connect_errno, Some(libc::EACCES), "{refused:#?}");
    env.probe(NOBODY, &env.socket("ops")).assert_granted(1);
}

#[test]
fn command_line_user_overrides_the_file() {
    let env = TestEnv::new();
    let config = env.write_config(&format!(
        "user = \"daemon\"\nsocket_dir = \"{}\"\n{HTTP_BINDING}",
        env.socket_dir().display()
    ));
    let daemon = Daemon::start(&[
        "--config".as_ref(),
        config.as_os_str(),
        "--user".as_ref(),
        "nobody".as_ref(),
    ]);
    assert_unprivileged(&daemon);
    assert_socket_file(&env.socket("http"), 65534, 33, 0o660);
}
