//! `portbinder exec`: real unmodified servers (gunicorn from Debian, a Rust server on the
//! listenfd crate) and the Python client of docs/CLIENTS.md get port 80 through systemd's
//! LISTEN_FDS protocol as an unprivileged user, with every fd named and no other fd touched.
//! How exec fails is in exec_errors.rs.

mod common;

use std::collections::HashMap;
use std::fs;
use std::os::fd::AsRawFd;
use std::process::Command;

use common::*;

/// Prints, as one JSON object, the LISTEN_* variables, its pid and, for each open fd above
/// 2, its type (and whether it is close-on-exec: it must not be, it survived an exec).
const SHOW_FDS: &str = r#"
import json, os, socket
fds = {}
for name in os.listdir("/proc/self/fd"):
    fd = int(name)
    if fd <= 2:
        continue
    try:
        dup = os.dup(fd)
    except OSError:
        continue  # the directory listing's own fd, closed by now
    try:
        s = socket.socket(fileno=dup)
        fds[fd] = [s.family.name, s.type.name, s.getsockname()[1]]
        s.close()
    except OSError:
        os.close(dup)
        fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
env = {k: v for k, v in os.environ.items() if k.startswith("LISTEN")}
print(json.dumps({"pid": os.getpid(), "env": env, "fds": fds}))
"#;

#[derive(Debug, serde::Deserialize)]
struct Shown {
    pid: u32,
    env: HashMap<String, String>,
    fds: HashMap<String, serde_json::Value>,
}

#[test]
fn gunicorn_from_debian_serves_port_80_unprivileged() {
    let env = TestEnv::new();
    let _daemon = env.serve(&env.config(&format!("{OPEN_HTTP}{DNS_BINDING}")));
    fs::write(
        env.path().join("wsgi_app.py"),
        "import os\n\
         def app(environ, start_response):\n    \
             start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
             return [b'gunicorn as uid %d\\n' % os.getuid()]\n",
    )
    .unwrap();
    let mut gunicorn = Proc::spawn(
        env.exec_as(
            WWW_DATA,
            "http",
            &[
                "/usr/bin/gunicorn".as_ref(),
                "--workers=1".as_ref(),
                "--chdir".as_ref(),
                env.path().as_os_str(),
                "wsgi_app:app".as_ref(),
            ],
        ),
        "gunicorn under portbinder exec",
    );
    let mut reply = String::new();
    let answered = wait_until(EXIT_TIMEOUT, || {
        reply = try_http_get("127.0.0.1:80").unwrap_or_default();
        !reply.is_empty() || gunicorn.try_status().is_some()
    });
    assert!(
        answered && reply.contains(" 200 OK\r\n"),
        "{reply}\n{}",
        gunicorn.report()
    );
    assert!(reply.ends_with("gunicorn as uid 33\n"), "{reply}");
    // gunicorn took both sockets of the binding (LISTEN_FDS=2): the IPv6 one answers too.
    assert!(
        try_http_get("[::1]:80")
            .unwrap_or_default()
            .ends_with("uid 33\n")
    );
    gunicorn.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(
        gunicorn.wait_timeout(EXIT_TIMEOUT).is_some(),
        "{}",
        gunicorn.report()
    );
}

#[test]
fn rust_listenfd_server_serves_port_80_unprivileged() {
    let env = TestEnv::new();
    let _daemon = env.serve(&env.config(&format!("{OPEN_HTTP}{DNS_BINDING}")));
    let server = env.install(&built("examples/listenfd_server"), "listenfd_server");
    let mut cmd = env.exec_as(WWW_DATA, "http", &[server.as_os_str()]);
    cmd.env("SERVE_REQUESTS", "1");
    let mut proc = Proc::spawn(cmd, "listenfd_server under portbinder exec");
    proc.expect_line("serving on 127.0.0.1:80", EXIT_TIMEOUT);
    let reply = http_get("127.0.0.1:80");
    assert!(
        reply.ends_with("listenfd server on 127.0.0.1:80, uid 33\n"),
        "{reply}"
    );
    proc.finish(EXIT_TIMEOUT).assert_success();
}

#[test]
fn listen_fdnames_name_every_fd_and_other_fds_are_untouched() {
    let env = TestEnv::new();
    let _daemon = env.serve(&env.config(&format!("{OPEN_HTTP}{DNS_BINDING}")));
    let script = env.path().join("show_fds.py");
    fs::write(&script, SHOW_FDS).unwrap();
    let mut cmd = env.exec_as(
        WWW_DATA,
        "http,dns",
        &["/usr/bin/python3".as_ref(), script.as_os_str()],
    );
    // An fd the parent hands down on purpose (at 20, without close-on-exec) must survive.
    let keep = fs::File::open(&script).unwrap();
    let raw = keep.as_raw_fd();
    inherit_fd(&mut cmd, raw, 20);
    let shown: Shown = Proc::spawn(cmd, "exec http,dns")
        .finish(EXIT_TIMEOUT)
        .json();
    assert_eq!(shown.env["LISTEN_FDS"], "3");
    assert_eq!(shown.env["LISTEN_FDNAMES"], "http:http:dns");
    assert_eq!(
        shown.env["LISTEN_PID"],
        shown.pid.to_string(),
        "exec keeps the pid"
    );
    let fd = |n: &str| shown.fds.get(n).cloned().unwrap_or_default();
    assert_eq!(fd("3"), serde_json::json!(["AF_INET", "SOCK_STREAM", 80]));
    assert_eq!(fd("4"), serde_json::json!(["AF_INET6", "SOCK_STREAM", 80]));
    assert_eq!(fd("5"), serde_json::json!(["AF_INET", "SOCK_DGRAM", 53]));
    assert_eq!(fd("20"), serde_json::json!(script.to_str().unwrap()));
    // No other socket: the connections to the daemon were closed before the exec. (Fds
    // that the test runner passes down, such as a jobserver pipe, stay: not ours to close.)
    let sockets = shown.fds.values().filter(|v| v.is_array()).count();
    assert_eq!(sockets, 3, "only the granted sockets: {shown:?}");
}

#[test]
fn python_client_from_docs_clients_md_works() {
    let env = TestEnv::new();
    let _daemon = env.serve(&env.config(&format!("{OPEN_HTTP}{DNS_BINDING}")));
    let doc = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CLIENTS.md")).unwrap();
    let start = doc
        .find("```python\n")
        .expect("a python block in docs/CLIENTS.md")
        + "```python\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let script = env.path().join("client_from_docs.py");
    fs::write(&script, &doc[start..end]).unwrap();
    let run = |user: User| {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(&script).arg(env.socket("http")).env_clear();
        user.apply(&mut cmd);
        Proc::spawn(cmd, "python client from docs/CLIENTS.md").finish(EXIT_TIMEOUT)
    };
    let granted = run(WWW_DATA);
    granted.assert_success();
    assert_eq!(
        granted.stdout,
        "AF_INET SOCK_STREAM ('127.0.0.1', 80)\nAF_INET6 SOCK_STREAM ('::1', 80, 0, 0)\n",
        "{granted}"
    );
    let denied = run(NOBODY);
    assert_eq!(denied.code, Some(1), "{denied}");
    assert!(
        denied
            .stderr
            .contains("uid 65534 may not fetch binding `http`"),
        "{denied}"
    );
}
