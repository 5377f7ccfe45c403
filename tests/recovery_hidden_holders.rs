//! Every holder of a socket is judged, even one that /proc/PID/fd does not show: a process
//! whose main thread exited (pthread_exit) while another thread holds the socket, and a thread
//! that unshared its descriptor table and holds it there alone. Both are found through
//! /proc/PID/task/TID/fd, so a user dropped from `allow_users` cannot keep a socket out of
//! sight and still have it recovered and handed to the binding's programs.

mod common;

use std::process::Command;

use common::shim::compile_c;
use common::*;
use nix::sys::signal::Signal;

/// `http` on 127.0.0.1:8080 (a port anyone may bind) for group www-data, that anyone may
/// connect to.
const HTTP_8080_FOR_ANYONE: &str = r#"
[binding.http]
listen = ["127.0.0.1:8080"]
group = "www-data"
mode = "0666"
"#;

/// A binding that allows `daemon` (uid 1) fetches the socket into `threadhold MODE` running
/// as uid 1, beside an app as www-data; the daemon is killed, `daemon` is dropped from
/// `allow_users`, and the restart must refuse to recover the socket, naming the hidden
/// holder. With `daemon` allowed again, the socket is recovered, counting both holders.
fn hidden_holder_stops_recovery(mode: &str) {
    let env = TestEnv::new();
    let helper = compile_c(&env, "threadhold");
    let allowing = env.config(&format!(
        "{HTTP_8080_FOR_ANYONE}allow_users = [\"daemon\"]\n"
    ));
    let mut first = env.serve(&allowing);
    let socket = env.socket("http");
    let _app = env.serving_app(WWW_DATA, "serve-http", "http");
    let inode = env.probe(WWW_DATA, &socket).inodes()[0];
    let mut cmd = Command::new(&helper);
    cmd.arg(&socket).arg(mode);
    DAEMON.apply(&mut cmd);
    let mut hidden = Proc::spawn(cmd, &format!("threadhold {mode} as daemon"));
    let ready = hidden.next_line(EXIT_TIMEOUT);
    assert_eq!(
        ready,
        format!("ready {}", hidden.pid()),
        "{}",
        hidden.report()
    );
    // `ready` comes once the helper holds the socket out of /proc/PID/fd's sight (in exit-main
    // mode, once its main thread is a zombie), so nothing needs to happen in between.
    assert!(
        !socket_inodes(hidden.pid()).contains(&inode),
        "/proc/PID/fd shows the socket: the helper does not hide it"
    );
    first.stop_with(Signal::SIGKILL);

    let narrowed = env.config(HTTP_8080_FOR_ANYONE);
    serve_expect_failure(&narrowed).assert_error(
        4,
        &[
            &format!(
                "not recovering tcp://127.0.0.1:8080 for binding `http` from pid {} (uid 1",
                hidden.pid()
            ),
            "uid 1 may not fetch binding `http`",
            "only when every process holding it may fetch the binding",
            "`ss -lntup 'sport = :8080'` shows its owner",
        ],
    );

    let again = env.serve(&env.config(&format!(
        "{HTTP_8080_FOR_ANYONE}allow_users = [\"daemon\"]\n"
    )));
    assert_eq!(env.probe(WWW_DATA, &socket).inodes(), [inode]);
    again
        .wait_event("recovered", &[("binding", "http")])
        .assert_fields(&[("rule", "granted"), ("holders", "2"), ("ungranted", "0")]);
}

#[test]
fn a_holder_whose_main_thread_exited_is_still_judged() {
    hidden_holder_stops_recovery("exit-main");
}

#[test]
fn a_thread_holding_the_socket_in_a_descriptor_table_of_its_own_is_still_judged() {
    hidden_holder_stops_recovery("unshare");
}
