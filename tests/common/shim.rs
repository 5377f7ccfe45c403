//! What the preload shim's tests need beyond the daemon: C programs compiled with `cc`, the
//! `--preload` command line, a descriptor limit for the child, and what the shimmed program
//! prints. A holder's view of a shared socket is in procfs.rs.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use super::TestEnv;

/// Compiles `tests/clients/NAME.c` into the test directory (mode 0755, so other users can
/// run it) and returns its path.
pub fn compile_c(env: &TestEnv, name: &str) -> PathBuf {
    let out = env.path().join(name);
    let source = format!("{}/tests/clients/{name}.c", env!("CARGO_MANIFEST_DIR"));
    let result = Command::new("cc")
        .args(["-O1", "-pthread", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&out)
        .arg(&source)
        .output()
        .expect("run cc");
    assert!(
        result.status.success(),
        "cc {source} failed:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    out
}

/// What tests/clients/daemonlike.c's `serve-tcp` answers an HTTP request with.
pub const DAEMONLIKE_REPLY: &str = "HTTP/1.0 200 OK\r\n\r\nhello from daemonlike\n";

/// `portbinder exec --preload [FLAGS...] --preload-lib <copy> --socket-dir <dir> NAMES --
/// PROGRAM...` as www-data.
pub fn preload_as_www_data<S: AsRef<OsStr>>(
    env: &TestEnv,
    names: &str,
    flags: &[&str],
    program: &[S],
) -> Command {
    let lib = env.preload_lib();
    let mut args: Vec<OsString> = vec!["exec".into(), "--preload".into()];
    args.extend(flags.iter().map(OsString::from));
    args.extend([
        "--preload-lib".into(),
        lib.into_os_string(),
        "--socket-dir".into(),
        env.socket_dir().into_os_string(),
        names.into(),
        "--".into(),
    ]);
    args.extend(program.iter().map(|a| a.as_ref().to_owned()));
    env.portbinder_as(super::WWW_DATA, &args)
}

/// Makes `cmd` run with RLIMIT_NOFILE `limit` (soft and hard), whatever the test runner's.
pub fn with_fd_limit(cmd: &mut Command, limit: u64) -> &mut Command {
    let rlimit = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: the hook runs in the forked child before exec and only calls setrlimit, which
    // is async-signal-safe, on a value copied into the closure before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// A successful bind as `daemonlike` reports it:
/// `bind ADDR: ok domain D inode I local L nonblock N`.
#[derive(Debug, PartialEq, Eq)]
pub struct Bound {
    /// SO_DOMAIN of the socket after the bind (2 AF_INET, 10 AF_INET6, 16 AF_NETLINK).
    pub domain: i32,
    /// The socket's inode.
    pub inode: u64,
    /// getsockname, as `IP:PORT` or `[IP]:PORT`.
    pub local: String,
    /// O_NONBLOCK on the program's descriptor after the bind.
    pub nonblock: bool,
}

/// Reads `daemonlike`'s next line, which must report a successful bind of `addr`.
pub fn expect_bound(proc: &mut super::Proc, addr: &str) -> Bound {
    let line = proc.next_line(super::EXIT_TIMEOUT);
    let parsed = line
        .strip_prefix(&format!("bind {addr}: ok "))
        .and_then(|rest| {
            let f: Vec<&str> = rest.split(' ').collect();
            match f[..] {
                ["domain", d, "inode", i, "local", l, "nonblock", n] => Some(Bound {
                    domain: d.parse().ok()?,
                    inode: i.parse().ok()?,
                    local: l.to_owned(),
                    nonblock: n == "1",
                }),
                _ => None,
            }
        });
    parsed.unwrap_or_else(|| {
        panic!(
            "expected `bind {addr}: ok ...`, got `{line}`\n{}",
            proc.report()
        )
    })
}

/// Reads `daemonlike`'s next line, which must start with `prefix`; returns the line.
pub fn expect_prefix(proc: &mut super::Proc, prefix: &str) -> String {
    let line = proc.next_line(super::EXIT_TIMEOUT);
    assert!(
        line.starts_with(prefix),
        "expected a line starting with `{prefix}`, got `{line}`\n{}",
        proc.report()
    );
    line
}
