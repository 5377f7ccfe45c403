//! A binding's socket options as its clients see them: `tests/clients/sockopts.py` run as
//! www-data reads them back with getsockopt on the granted sockets, and the sysctls they are
//! judged against; and a listening socket's backlog, as `ss` shows it.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{EXIT_TIMEOUT, Proc, TestEnv, User, WWW_DATA};

/// Copies `tests/clients/NAME` into the test directory, where other users can read it.
pub fn client_script(env: &TestEnv, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name);
    env.install(&src, name)
}

/// `python3 tests/clients/SCRIPT ARGS…` as `user`, in the test's network namespace.
pub fn python_as(env: &TestEnv, user: User, script: &str, args: &[&str]) -> Proc {
    let path = client_script(env, script);
    Proc::spawn(
        env.python_command(user, &path, args),
        &format!("{script} as {}", user.name),
    )
}

/// What `sockopts.py` reports about the sockets of `binding` (extra arguments: what else to
/// try as the client, e.g. raising a buffer itself).
pub fn read_back(env: &TestEnv, binding: &str, extra: &[&str]) -> Value {
    let socket = env.socket(binding);
    let mut args = vec![socket.to_str().unwrap()];
    args.extend_from_slice(extra);
    python_as(env, WWW_DATA, "sockopts.py", &args)
        .finish(EXIT_TIMEOUT)
        .json()
}

/// A numeric sysctl such as `net.core.rmem_max`.
pub fn sysctl(name: &str) -> u64 {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    fs::read_to_string(&path).unwrap().trim().parse().unwrap()
}

/// The backlog of the TCP socket listening on 127.0.0.1:`port` in the test's network
/// namespace: the Send-Q column of `ss -ltn` for a listening socket.
pub fn listen_backlog(port: u16) -> u32 {
    let out = std::process::Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .expect("run ss (iproute2)");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains(&format!("127.0.0.1:{port}")))
        .unwrap_or_else(|| panic!("nothing listens on 127.0.0.1:{port}: {text}"));
    line.split_whitespace()
        .nth(2)
        .and_then(|q| q.parse().ok())
        .unwrap_or_else(|| panic!("no Send-Q in {line:?}"))
}
