//! `portbinder exec --preload`: unmodified programs that just call bind(2) get the granted
//! socket; every other bind goes to the real bind(2); nothing leaks to their children.

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use common::*;

/// `portbinder exec --preload --preload-lib <lib> --socket-dir <dir> http -- <program...>`
/// as www-data.
fn exec_preload_lib<S: AsRef<OsStr>>(env: &TestEnv, lib: &Path, program: &[S]) -> Command {
    let socket_dir = env.socket_dir();
    let mut args: Vec<&OsStr> = vec![
        "exec".as_ref(),
        "--preload".as_ref(),
        "--preload-lib".as_ref(),
        lib.as_os_str(),
        "--socket-dir".as_ref(),
        socket_dir.as_os_str(),
        "http".as_ref(),
        "--".as_ref(),
    ];
    args.extend(program.iter().map(AsRef::as_ref));
    env.portbinder_as(WWW_DATA, &args)
}

/// [`exec_preload_lib`] with the shim built alongside the binary, copied into the test
/// directory.
fn exec_preload(env: &TestEnv, program: &[&OsStr]) -> Command {
    exec_preload_lib(env, &env.preload_lib(), program)
}

#[test]
fn python_http_server_serves_port_80() {
    let env = TestEnv::new();
    let _daemon = env.serve(&env.config(ANY_ADDRESS_HTTP));
    std::fs::write(
        env.path().join("index.html"),
        "hello via the preload shim\n",
    )
    .unwrap();
    let mut server = Proc::spawn(
        exec_preload(
            &env,
            &[
                "/usr/bin/python3".as_ref(),
                "-m".as_ref(),
                "http.server".as_ref(),
                "80".as_ref(),
            ],
        ),
        "python3 -m http.server 80 under --preload",
    );
    let mut reply = String::new();
    let served = wait_until(EXIT_TIMEOUT, || {
        reply = try_http_get("127.0.0.1:80")
            .or_else(|_| try_http_get("[::1]:80"))
            .unwrap_or_default();
        !reply.is_empty() || server.try_status().is_some()
    });
    assert!(served, "{}", server.report());
    assert!(
        reply.starts_with("HTTP/1.0 200 OK"),
        "{reply}\n{}",
        server.report()
    );
    assert!(reply.ends_with("hello via the preload shim\n"), "{reply}");
}

#[test]
fn c_program_gets_port_80_and_other_binds_are_real() {
    let env = TestEnv::new();
    let _daemon = env.serve(&env.config(ANY_ADDRESS_HTTP));
    let program = common::shim::compile_c(&env, "bindtest");
    let writable = env.path().join("www");
    std::fs::create_dir(&writable).unwrap();
    std::os::unix::fs::chown(&writable, Some(WWW_DATA.uid), Some(WWW_DATA.gid)).unwrap();
    let unix = writable.join("app.sock");
    let unix_arg = format!("unix:{}", unix.display());
    let mut proc = Proc::spawn(
        exec_preload(
            &env,
            &[
                program.as_os_str(),
                "80".as_ref(),
                "8080".as_ref(),
                "81".as_ref(),
                unix_arg.as_ref(),
            ],
        ),
        "bindtest under --preload",
    );
    proc.expect_line("env LD_PRELOAD=- PORTBINDER_FDS=-", EXIT_TIMEOUT);
    proc.expect_line("bind 80: ok", EXIT_TIMEOUT);
    // Not granted, unprivileged: the real bind, which succeeds.
    proc.expect_line("bind 8080: ok", EXIT_TIMEOUT);
    // Not granted, privileged: the real bind's EACCES, as without the shim.
    proc.expect_line(&format!("bind 81: errno {}", libc::EACCES), EXIT_TIMEOUT);
    proc.expect_line(&format!("bind {unix_arg}: ok"), EXIT_TIMEOUT);
    assert!(unix.exists(), "the Unix socket was bound for real");
    // The program asked for SOCK_CLOEXEC; the granted socket put in its place keeps that.
    proc.expect_line("cloexec 1", EXIT_TIMEOUT);
    proc.expect_line("listening", EXIT_TIMEOUT);
    assert_eq!(
        http_get("127.0.0.1:80"),
        "HTTP/1.0 200 OK\r\n\r\nhello from bindtest\n"
    );
    proc.finish(EXIT_TIMEOUT).assert_success();
}

#[test]
fn shim_and_sockets_do_not_leak_into_children() {
    let env = TestEnv::new();
    let _daemon = env.serve(&env.config(ANY_ADDRESS_HTTP));
    // The program (python) runs a child that reports what it inherited.
    let child = "import os, subprocess; print(subprocess.run(['/usr/bin/python3', '-c', \
        'import os; print(os.environ.get(\"LD_PRELOAD\"), os.environ.get(\"PORTBINDER_FDS\"), \
        sorted(int(f) for f in os.listdir(\"/proc/self/fd\") if 3 <= int(f) < 10))'], \
        capture_output=True, text=True).stdout.strip())";
    let outcome = Proc::spawn(
        exec_preload(
            &env,
            &["/usr/bin/python3".as_ref(), "-c".as_ref(), child.as_ref()],
        ),
        "python child under --preload",
    )
    .finish(EXIT_TIMEOUT);
    outcome.assert_success();
    // The listdir fd itself shows up as the lowest free number (3): the granted 3 and 4 are
    // closed in the child, so 3 is free again and only the directory's fd is there.
    assert_eq!(outcome.stdout, "None None [3]\n", "{outcome}");
}

#[test]
fn missing_shim_is_an_error_not_a_silent_fallback() {
    let env = TestEnv::new();
    let _daemon = env.serve(&env.config(ANY_ADDRESS_HTTP));
    let missing = Path::new("/nonexistent/libportbinder_preload.so");
    Proc::spawn(
        exec_preload_lib(&env, missing, &["/usr/bin/true"]),
        "exec --preload with a missing shim",
    )
    .finish(EXIT_TIMEOUT)
    .assert_error(
        9,
        &[
            "/nonexistent/libportbinder_preload.so is missing",
            "--preload-lib",
        ],
    );
}

#[test]
fn children_that_inherit_the_shim_get_the_sockets_it_kept() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(ANY_ADDRESS_HTTP));
    let program = common::shim::compile_c(&env, "daemonlike");
    // The shell is the preloaded program; its shim moves the sockets up and, asked to let
    // children inherit it, names their new numbers (with their inodes) for the child's shim.
    let script = format!(
        "echo \"$PORTBINDER_FDS\"; exec {} socket tcp4 bind 0.0.0.0:80",
        program.display()
    );
    let mut cmd = exec_preload(&env, &["/bin/sh".as_ref(), "-c".as_ref(), script.as_ref()]);
    cmd.env("PORTBINDER_PRELOAD_INHERIT", "1");
    let mut proc = Proc::spawn(cmd, "sh -c 'exec daemonlike' inheriting the shim");
    let fds = proc.next_line(EXIT_TIMEOUT);
    let held = socket_inodes(daemon.pid());
    let kept: Vec<(i32, u64)> = fds
        .split(',')
        .map(|e| {
            let (fd, inode) = e.split_once(':').expect("FD:INODE");
            (fd.parse().unwrap(), inode.parse().unwrap())
        })
        .collect();
    assert_eq!(kept.len(), 2, "{fds}");
    for (fd, inode) in &kept {
        assert!(*fd > 4 && held.contains(inode), "{fds} vs {held:?}");
    }
    proc.expect_line("socket tcp4 fd 3", EXIT_TIMEOUT);
    let bound = common::shim::expect_bound(&mut proc, "0.0.0.0:80");
    assert_eq!(bound.inode, kept[0].1, "{bound:?}");
    proc.finish(EXIT_TIMEOUT).assert_success();
}
