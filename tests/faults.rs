//! Faults around the daemon: killed with SIGKILL while an application serves, restarted
//! while the application still holds the port, its socket directory deleted, replaced or
//! booby-trapped, its configuration writable by someone other than root.

mod adversary;
mod common;

use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, chown, symlink};
use std::path::Path;
use std::thread;
use std::time::Duration;

use adversary::*;
use common::load::{Load, http_answered_by};
use common::*;
use nix::sys::signal::Signal;
use serde_json::json;

/// Starts the daemon and an application (client.py serve-http) that fetched port 80.
fn daemon_and_app(env: &TestEnv) -> (Daemon, Proc) {
    let daemon = env.serve(&env.config(HTTP_BINDING));
    let app = env.serving_app(WWW_DATA, "serve-http", "http");
    (daemon, app)
}

#[test]
fn kill_9_of_the_daemon_loses_no_request_of_a_serving_app() {
    let env = TestEnv::new();
    let (mut daemon, mut app) = daemon_and_app(&env);
    let load = Load::http("127.0.0.1:80");
    thread::sleep(Duration::from_millis(500));
    let (before, _) = load.counts();
    daemon.stop_with(Signal::SIGKILL);
    thread::sleep(Duration::from_millis(1000));
    let (ok, failed) = load.finish();
    assert!(
        before > 0 && ok > before,
        "requests: {before} before the kill, {ok} in all\n{}",
        app.report()
    );
    assert_eq!(
        failed,
        0,
        "requests failed across the kill\n{}",
        app.report()
    );
    assert!(app.try_status().is_none(), "the app died\n{}", app.report());
    record(
        "fault-kill-9",
        json!({"requests_before": before, "requests_after": ok - before, "failed": failed}),
    );
}

#[test]
fn restart_while_the_app_holds_the_port_names_the_port_then_recovers() {
    let env = TestEnv::new();
    let (mut daemon, app) = daemon_and_app(&env);
    let config = env.path().join("portbinder.toml");
    daemon.stop_with(Signal::SIGKILL);
    // The killed daemon could not remove its socket file.
    assert_eq!(env.socket_files(), [env.socket("http")]);

    // With CAP_SYS_PTRACE the restart recovers the socket from the app (tests/recovery.rs);
    // without it, it fails as a bind(2) would, naming the port and the reason.
    let outcome = serve_without_cap_sys_ptrace(&config);
    outcome.assert_error(
        4,
        &[
            "cannot recover tcp://127.0.0.1:80 for binding `http`",
            "CAP_SYS_PTRACE",
            "ss -lntup 'sport = :80'",
        ],
    );
    assert!(
        http_answered_by("127.0.0.1:80".parse().unwrap()).is_some(),
        "the app stopped serving after the failed restart"
    );

    // Once the app is gone, the same configuration starts and replaces the stale file.
    drop(app);
    let _daemon = env.serve(&config);
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(1);
}

/// tmpfiles or an operator removes the socket directory under a running daemon: it stops
/// cleanly (exit 0) and the next start recreates the directory.
#[test]
fn socket_dir_deleted_while_serving_is_recreated_at_the_next_start() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    let mut daemon = env.serve(&config);
    fs::remove_dir_all(env.socket_dir()).unwrap();
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.report());

    let _daemon = env.serve(&config);
    let dir = fs::symlink_metadata(env.socket_dir()).unwrap();
    assert!(dir.is_dir());
    assert_eq!((dir.uid(), dir.mode() & 0o7777), (65534, 0o755));
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(1);
}

/// A socket directory that is a symlink, dangling or pointing at a system directory, is
/// refused (exit 4) and nothing is created through it.
#[test]
fn socket_dir_symlinks_are_refused_and_never_followed() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    let missing = env.path().join("missing");
    symlink(&missing, env.socket_dir()).unwrap();
    serve_expect_failure(&config)
        .assert_error(4, &[env.socket_dir().to_str().unwrap(), "symbolic link"]);
    assert!(!missing.exists(), "the daemon created the link's target");

    fs::remove_file(env.socket_dir()).unwrap();
    let victim = env.path().join("victim");
    fs::create_dir(&victim).unwrap();
    chown(&victim, Some(65534), Some(65534)).unwrap();
    symlink(&victim, env.socket_dir()).unwrap();
    serve_expect_failure(&config).assert_error(4, &["symbolic link"]);
    assert_eq!(fs::read_dir(&victim).unwrap().count(), 0);
    TcpStream::connect("127.0.0.1:80").expect_err("the refused daemon left port 80 bound");
}

/// A symlink planted where a socket file goes (by whoever owns the socket directory) is
/// replaced by the socket, never written through.
#[test]
fn a_symlink_planted_at_the_socket_path_is_replaced_not_followed() {
    let env = TestEnv::new();
    env.create_socket_dir_for_nobody();
    let victim = env.path().join("victim");
    fs::write(&victim, "root's file\n").unwrap();
    let before = fs::metadata(&victim).unwrap();
    symlink(&victim, env.socket("http")).unwrap();

    let _daemon = env.serve(&env.config(HTTP_BINDING));
    assert!(
        fs::symlink_metadata(env.socket("http"))
            .unwrap()
            .file_type()
            .is_socket()
    );
    let after = fs::metadata(&victim).unwrap();
    assert_eq!(
        (after.uid(), after.gid(), after.mode(), after.ino()),
        (before.uid(), before.gid(), before.mode(), before.ino())
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "root's file\n");
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(1);
}

/// `serve` refuses the configuration (exit 3) with a message naming the file, what is
/// wrong and the command that fixes it; it binds and creates nothing.
fn assert_refused(env: &TestEnv, config: &Path, needles: &[&str]) {
    let mut all = vec![
        "refusing configuration file",
        "decides who gets privileged ports",
    ];
    all.extend_from_slice(needles);
    serve_expect_failure(config).assert_error(3, &all);
    assert!(
        !env.socket_dir().exists(),
        "a refused start created the socket directory"
    );
    TcpStream::connect("127.0.0.1:80").expect_err("a refused start bound port 80");
}

#[test]
fn config_writable_by_others_or_its_group_is_refused() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    let shown = config.to_str().unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o666)).unwrap();
    assert_refused(
        &env,
        &config,
        &[shown, "mode 0666", &format!("`chmod go-w {shown}`")],
    );
    chown(&config, None, Some(33)).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o660)).unwrap();
    assert_refused(&env, &config, &[shown, "mode 0660"]);
}

#[test]
fn config_owned_by_another_user_is_refused() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    chown(&config, Some(33), Some(33)).unwrap();
    let shown = config.to_str().unwrap();
    assert_refused(
        &env,
        &config,
        &[
            "owned by uid 33 (www-data)",
            &format!("`chown root: {shown}`"),
        ],
    );
}

#[test]
fn config_in_a_directory_others_can_write_is_refused() {
    let env = TestEnv::new();
    let dir = env.path().join("etc");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let config = dir.join("portbinder.toml");
    fs::rename(env.config(HTTP_BINDING), &config).unwrap();
    let shown = dir.to_str().unwrap();
    assert_refused(
        &env,
        &config,
        &[&format!("the directory {shown} on its path"), "mode 0777"],
    );
    // The sticky bit (as on /tmp) keeps others from replacing root's file: accepted.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
    let _daemon = env.serve(&config);
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(1);
}

/// The file checked is the file read: through a symlink, its real directory counts.
#[test]
fn config_behind_a_symlink_is_judged_where_it_really_lies() {
    let env = TestEnv::new();
    let theirs = env.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    chown(&theirs, Some(33), Some(33)).unwrap();
    let real = theirs.join("portbinder.toml");
    fs::rename(env.config(HTTP_BINDING), &real).unwrap();
    let link = env.path().join("portbinder.toml");
    symlink(&real, &link).unwrap();
    assert_refused(
        &env,
        &link,
        &[&format!(
            "the directory {} on its path is owned by uid 33 (www-data)",
            theirs.display()
        )],
    );
}

/// A symlink on the path as given, in a directory someone else owns, could be pointed at
/// another file (or replaced by one) before the next read, a reload or a restart: refused even
/// though the file it leads to now is root's, in root's directories, since every directory the
/// path is looked up in is judged. The same link in a directory only root can change is
/// followed.
#[test]
fn a_symlink_in_a_directory_someone_else_owns_is_refused_wherever_it_leads() {
    let env = TestEnv::new();
    let real = env.config(HTTP_BINDING);
    let theirs = env.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    chown(&theirs, Some(33), Some(33)).unwrap();
    let link = theirs.join("portbinder.toml");
    symlink(&real, &link).unwrap();
    assert_refused(
        &env,
        &link,
        &[
            &format!(
                "{} is owned by uid 33 (www-data), and the path {} is looked up in it",
                theirs.display(),
                link.display()
            ),
            &format!("or name the file by its real path {}", real.display()),
        ],
    );
    let ours = env.path().join("portbinder-link.toml");
    symlink(&real, &ours).unwrap();
    let _daemon = env.serve(&ours);
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(1);
}

/// `check` validates a draft wherever it lies; only `serve` insists on root's files.
#[test]
fn check_validates_a_draft_whoever_can_write_it() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    fs::set_permissions(&config, fs::Permissions::from_mode(0o666)).unwrap();
    run_check(&["--config".as_ref(), config.as_os_str()]).assert_success();
}
