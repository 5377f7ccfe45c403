//! What the daemon holds and leaves behind (issue 10, item 6): no working directory of its
//! start-up, socket files removed through the directory it checked (not by a path that may
//! lead elsewhere by then), and no binding it could never grant.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::*;

#[test]
fn the_daemon_works_from_the_root_directory_after_start_up() {
    let env = TestEnv::new();
    let mut cmd = serve_command(&env.config(HTTP_BINDING));
    cmd.current_dir(env.path());
    let daemon = Daemon::spawn(cmd);
    let cwd = fs::read_link(format!("/proc/{}/cwd", daemon.pid())).unwrap();
    assert_eq!(cwd, std::path::Path::new("/"), "{}", daemon.report());
}

#[test]
fn socket_files_are_removed_in_the_directory_that_was_checked() {
    let env = TestEnv::new();
    let mut daemon = env.serve(&env.config(HTTP_BINDING));
    // While it serves, the directory is moved away and another takes its path, with a file
    // of the same name: the daemon must clean up its own directory, and leave the other.
    let moved = env.path().join("run.moved");
    fs::rename(env.socket_dir(), &moved).unwrap();
    fs::create_dir(env.socket_dir()).unwrap();
    let decoy = env.socket("http");
    fs::write(&decoy, b"not the daemon's").unwrap();
    fs::set_permissions(&decoy, fs::Permissions::from_mode(0o644)).unwrap();

    assert!(daemon.stop().success(), "{}", daemon.report());
    assert!(
        !moved.join("http.sock").exists(),
        "the daemon's socket file is left in its directory:\n{}",
        daemon.report()
    );
    assert_eq!(fs::read(&decoy).unwrap(), b"not the daemon's");
}

/// A binding of `n` TCP addresses, 127.0.0.1:20000 and up.
fn many_addresses(n: u16) -> String {
    let listen: Vec<String> = (0..n)
        .map(|i| format!("\"127.0.0.1:{}\"", 20000 + i))
        .collect();
    format!(
        "[binding.many]\nlisten = [{}]\ngroup = \"www-data\"\n",
        listen.join(", ")
    )
}

#[test]
fn a_binding_holds_at_most_the_253_sockets_one_message_carries() {
    let env = TestEnv::new();
    // 254 cannot be granted in one message (SCM_MAX_FD): check and serve refuse it.
    let too_many = env.config(&many_addresses(254));
    let needles = [
        "binding `many`: field `listen`: 254 addresses; at most 253",
        "SCM_MAX_FD",
    ];
    run_check(&["--config".as_ref(), too_many.as_os_str()]).assert_error(3, &needles);
    serve_expect_failure(&too_many).assert_error(3, &needles);
    env.assert_no_socket_files();

    // 253 are served, all of them, in one grant.
    let _daemon = env.serve(&env.config(&many_addresses(253)));
    let probe = env.probe(WWW_DATA, &env.socket("many"));
    probe.assert_granted(253);
    assert_eq!(probe.fds[252].addr, ("127.0.0.1".to_owned(), 20252));
}

#[test]
fn a_staging_directory_left_by_a_crash_of_the_same_pid_is_cleared() {
    let env = TestEnv::new();
    env.create_socket_dir_for_nobody();
    // A daemon killed while making its socket leaves `.NAME.PID.new`; a new daemon with the
    // same pid (pid 1 of a container, with a lasting socket_dir) must not trip over it. The
    // shell makes it with its own pid, which the daemon it execs keeps.
    let mut sh = std::process::Command::new("/bin/sh");
    sh.arg("-c")
        .arg(r#"stage="$1/.http.$$.new" && mkdir -m 0700 "$stage" && : > "$stage/http.sock" && shift && exec "$@""#)
        .arg("sh")
        .arg(env.socket_dir());
    let daemon = Daemon::spawn(serve_under(sh, &env.config(HTTP_BINDING)));
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(1);
    let stage = env.socket_dir().join(format!(".http.{}.new", daemon.pid()));
    assert!(!stage.exists(), "{}", daemon.report());
}
