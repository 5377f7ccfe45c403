//! What a restarted daemon does not recover, and says why: a socket on a port anyone may
//! bind that a process outside the binding holds, several sockets on one address
//! (SO_REUSEPORT), a socket that is not the one portbinder binds there, and a recovery that
//! is impossible (no CAP_SYS_PTRACE, holders in a pid namespace out of sight, a /proc of
//! another pid namespace). Each fails as a bind would have (exit 4, the EADDRINUSE hint),
//! with the reason, and leaves the holders' sockets as they were. The system calls recovery
//! uses stay forbidden inside the sandbox.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use nix::sys::signal::Signal;

/// The hint every refusal ends with, as a failed bind(2) of the port would print it.
fn in_use_hint(port: u16) -> String {
    format!("`ss -lntup 'sport = :{port}'` shows its owner")
}

/// Asserts a refused start: exit 4, the needles and the hint, and the socket files and the
/// record of the sockets bound as they were (the refusal comes before either is written).
fn assert_refused(env: &TestEnv, config: &Path, port: u16, needles: &[&str]) -> Outcome {
    let record = || std::fs::read(env.socket_dir().join(".portbinder.bound")).ok();
    let (before, recorded) = (env.socket_files(), record());
    let outcome = serve_expect_failure(config);
    let hint = in_use_hint(port);
    let mut all = needles.to_vec();
    all.push(&hint);
    outcome.assert_error(4, &all);
    // The reason is said once, not again as its own cause.
    assert_eq!(
        outcome.stderr.matches(needles[0]).count(),
        1,
        "{}",
        outcome.stderr
    );
    assert_eq!(env.socket_files(), before);
    assert_eq!(record(), recorded, "a refused start rewrote the record");
    outcome
}

/// A daemon, an app (`serve-http` as www-data) on its port 80, then the daemon killed with
/// SIGKILL: the app holds the port and no daemon runs.
fn app_left_holding_port_80(env: &TestEnv, config: &Path) -> Proc {
    let mut daemon = env.serve(config);
    let app = env.serving_app(WWW_DATA, "serve-http", "http");
    daemon.stop_with(Signal::SIGKILL);
    app
}

#[test]
fn a_socket_held_by_a_user_the_binding_does_not_grant_is_not_recovered() {
    let env = TestEnv::new();
    let holder = env.hold(DAEMON, "tcp", "127.0.0.1", 8080, &[]);
    let config = env.config(HTTP_8080);
    assert_refused(
        &env,
        &config,
        8080,
        &[
            &format!(
                "not recovering tcp://127.0.0.1:8080 for binding `http` from pid {} (uid 1, comm python3)",
                holder.held.pid
            ),
            "uid 1 may not fetch binding `http`",
            "port 8080 is not privileged (net.ipv4.ip_unprivileged_port_start is 1024)",
        ],
    );
    assert!(socket_inodes(holder.held.pid).contains(&holder.held.inode));
}

/// A privileged port held only by processes the binding does not grant (a root web server's
/// own socket on the binding's address) is never taken from them.
#[test]
fn a_privileged_port_held_only_by_another_server_is_not_recovered() {
    let env = TestEnv::new();
    let server = std::net::TcpListener::bind("127.0.0.1:80").unwrap();
    let config = env.config(HTTP_BINDING);
    assert_refused(
        &env,
        &config,
        80,
        &[
            &format!(
                "not recovering tcp://127.0.0.1:80 for binding `http` from pid {} (uid 0",
                std::process::id()
            ),
            "uid 0 may not fetch binding `http`",
            "no process holding its socket may fetch the binding",
            "another server's",
        ],
    );
    // Still the server's, and still listening.
    assert!(std::net::TcpStream::connect("127.0.0.1:80").is_ok());
    drop(server);
}

/// The realistic way to get there: a user is dropped from `allow_users` while its program
/// still holds the socket; after a crash the daemon will not share that socket with the
/// binding's new programs. Put the user back, and the same socket is recovered from both.
#[test]
fn a_user_no_longer_allowed_who_still_holds_the_socket_stops_its_recovery() {
    let env = TestEnv::new();
    // mode 0666: the socket file lets `daemon` connect; the daemon's rules decide.
    let allowing = format!("{HTTP_8080}allow_users = [\"daemon\"]\nmode = \"0666\"\n");
    let allowed = env.config(&allowing);
    let mut first = env.serve(&allowed);
    let socket = env.socket("http");
    let mut apps = Vec::new();
    for user in [WWW_DATA, DAEMON] {
        apps.push(env.serving_app(user, "serve-http", "http"));
    }
    let inode = env.probe(WWW_DATA, &socket).inodes()[0];
    first.stop_with(Signal::SIGKILL);

    let narrowed = env.config(&format!("{HTTP_8080}mode = \"0666\"\n"));
    assert_refused(
        &env,
        &narrowed,
        8080,
        &[
            &format!("from pid {} (uid 1, comm python3)", apps[1].pid()),
            "uid 1 may not fetch binding `http`",
            "only when every process holding it may fetch the binding",
        ],
    );

    let again = env.serve(&env.config(&allowing));
    assert_eq!(env.probe(WWW_DATA, &socket).inodes(), [inode]);
    again
        .wait_event("recovered", &[("binding", "http")])
        .assert_fields(&[("rule", "granted"), ("holders", "2"), ("ungranted", "0")]);
}

#[test]
fn several_sockets_on_the_address_are_an_error_not_a_guess() {
    let env = TestEnv::new();
    let one = env.hold(WWW_DATA, "tcp", "127.0.0.1", 8080, &["reuseport"]);
    let two = env.hold(WWW_DATA, "tcp", "127.0.0.1", 8080, &["reuseport"]);
    let (low, high) = (
        one.held.inode.min(two.held.inode),
        one.held.inode.max(two.held.inode),
    );
    assert_refused(
        &env,
        &env.config(HTTP_8080),
        8080,
        &[
            "cannot recover tcp://127.0.0.1:8080 for binding `http`",
            &format!("2 sockets are bound to it (socket:[{low}], socket:[{high}])"),
            "SO_REUSEPORT",
            "will not pick one",
        ],
    );
}

/// A dual-stack socket on `[::]` also takes the IPv4 port: it is not the IPv6-only socket
/// the binding asks for (`ipv6_only` defaults to true).
#[test]
fn a_dual_stack_socket_is_not_an_ipv6_only_bindings_socket() {
    let env = TestEnv::new();
    let _holder = env.hold(WWW_DATA, "tcp", "::", 8080, &["dual"]);
    let config = env.config("[binding.http]\nlisten = [\"[::]:8080\"]\ngroup = \"www-data\"\n");
    assert_refused(
        &env,
        &config,
        8080,
        &[
            "not recovering tcp://[::]:8080 for binding `http`",
            "the socket there is a dual-stack IPv6 socket (IPV6_V6ONLY off)",
        ],
    );
}

/// Root without CAP_SYS_PTRACE may neither read another user's descriptors in /proc nor
/// take one: the error says so, and the same start with the capability recovers the socket.
#[test]
fn without_cap_sys_ptrace_the_error_says_recovery_needs_it() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    let app = app_left_holding_port_80(&env, &config);
    let outcome = serve_without_cap_sys_ptrace(&config);
    outcome.assert_error(
        4,
        &[
            "cannot recover tcp://127.0.0.1:80 for binding `http`",
            "could not be read",
            "need CAP_SYS_PTRACE, and this daemon was started without it",
            &in_use_hint(80),
        ],
    );
    let inode = socket_inodes(app.pid())[0];
    let _daemon = env.serve(&config);
    assert!(
        env.probe(WWW_DATA, &env.socket("http"))
            .inodes()
            .contains(&inode)
    );
}

/// A daemon in a pid namespace of its own (with its own /proc) sees none of the processes
/// holding its socket: it says so instead of a bare EADDRINUSE.
#[test]
fn holders_out_of_the_daemons_pid_namespace_are_named_as_the_reason() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    let _app = app_left_holding_port_80(&env, &config);
    let mut unshare = Command::new("unshare");
    unshare.args(["--pid", "--fork", "--mount-proc", "--"]);
    Proc::spawn(
        serve_under(unshare, &config),
        "serve in a new pid namespace",
    )
    .finish(EXIT_TIMEOUT)
    .assert_error(
        4,
        &[
            "cannot recover tcp://127.0.0.1:80 for binding `http`",
            "is held by no process this daemon can see",
            "pid namespace",
            &in_use_hint(80),
        ],
    );
}

/// pidfd_open(2) numbers processes in the daemon's pid namespace; a /proc of another one
/// would describe other processes under the same numbers. Recovery refuses to mix them.
#[test]
fn a_proc_of_another_pid_namespace_is_refused() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    let _app = app_left_holding_port_80(&env, &config);
    let mut unshare = Command::new("unshare");
    unshare.args(["--pid", "--fork", "--"]);
    Proc::spawn(
        serve_under(unshare, &config),
        "serve with the parent's /proc",
    )
    .finish(EXIT_TIMEOUT)
    .assert_error(
        4,
        &[
            "/proc belongs to another pid namespace",
            "this process is pid 1",
            "--mount-proc",
        ],
    );
}
