//! Shared harness for portbinder's integration tests.
//!
//! Everything is real: the daemon binary runs as root and drops to `nobody`, binds port 80 in a
//! network namespace of the test's own, logs to the rsyslogd that `scripts/test` starts on
//! `/dev/log`, and is talked to by `tests/clients/client.py` running as Debian's unprivileged
//! accounts. Run the suite with `bash scripts/test` (as root).
//!
//! Environment:
//! * `PORTBINDER_TEST_SYSLOG` (required): the file rsyslogd writes every message to, one
//!   `facility.severity TAG MSG` line each.
//! * `PORTBINDER_TEST_BIN` (optional): the binary under test, instead of the one cargo built
//!   (for running the suite against an installed package).

// Each integration test crate uses a different subset of the harness.
#![allow(dead_code)]

pub mod uidflood;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use serde::Deserialize;
use tempfile::TempDir;

/// How long the daemon may take to log `event=ready`.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an expected syslog line may take to arrive.
pub const LOG_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client or a failing daemon may take to exit.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The client script, embedded so that it is written into each test's directory, where the
/// unprivileged client users can read it wherever the repository itself lives.
const CLIENT_PY: &str = include_str!("../clients/client.py");

/// Polls `done` every 10 ms until it returns true or `timeout` passes; returns the last result.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// Network namespace and per-test directory
// ---------------------------------------------------------------------------------------------

/// Proof that the calling thread has entered a network namespace of its own, with `lo` up.
///
/// The namespace belongs to the thread (hence `!Send`): processes and threads spawned from it
/// inherit it, so the daemon and the clients a test starts all see the same private loopback,
/// and tests can bind 127.0.0.1:80 and [::1]:80 in parallel.
pub struct NetNs {
    _thread_bound: PhantomData<*const ()>,
}

impl NetNs {
    /// Moves the calling thread into a new network namespace and brings `lo` up.
    pub fn enter() -> NetNs {
        // SAFETY: unshare(2) takes no pointers; CLONE_NEWNET only changes the calling thread's
        // network namespace, which is allowed in a multi-threaded process.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET): {}",
            io::Error::last_os_error()
        );
        let out = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .output()
            .expect("run `ip link set lo up` (iproute2)");
        assert!(
            out.status.success(),
            "ip link set lo up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        NetNs {
            _thread_bound: PhantomData,
        }
    }
}

/// One test's world: its network namespace and a temporary directory (mode 0755, so that
/// clients running as other users can traverse it) holding the config file, the client script
/// and the socket directory `<dir>/run`.
pub struct TestEnv {
    _netns: NetNs,
    dir: TempDir,
    client_script: PathBuf,
}

impl TestEnv {
    /// Enters a new network namespace and creates the test directory.
    pub fn new() -> TestEnv {
        let netns = NetNs::enter();
        let dir = tempfile::Builder::new()
            .prefix("pb-")
            .tempdir_in("/tmp")
            .expect("create test directory");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let client_script = dir.path().join("client.py");
        fs::write(&client_script, CLIENT_PY).unwrap();
        fs::set_permissions(&client_script, fs::Permissions::from_mode(0o644)).unwrap();
        TestEnv {
            _netns: netns,
            dir,
            client_script,
        }
    }

    /// The test directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The socket directory that [`TestEnv::globals`] configures (not created by the harness).
    pub fn socket_dir(&self) -> PathBuf {
        self.path().join("run")
    }

    /// The Unix socket path of binding `name`.
    pub fn socket(&self, name: &str) -> PathBuf {
        self.socket_dir().join(format!("{name}.sock"))
    }

    /// The `.sock` files present in the socket directory (none if it does not exist).
    pub fn socket_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(self.socket_dir()) else {
            return Vec::new();
        };
        entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension() == Some(OsStr::new("sock")))
            .collect()
    }

    /// The global part of a config file: run as `nobody`, sockets in [`TestEnv::socket_dir`],
    /// log to syslog with facility authpriv.
    pub fn globals(&self) -> String {
        format!(
            "user = \"nobody\"\nsocket_dir = \"{}\"\nlog = \"syslog\"\nfacility = \"authpriv\"\n",
            self.socket_dir().display()
        )
    }

    /// Writes `contents` to `portbinder.toml` in the test directory (mode 0600) and returns
    /// its path.
    pub fn write_config(&self, contents: &str) -> PathBuf {
        let path = self.path().join("portbinder.toml");
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        file.write_all(contents.as_bytes()).unwrap();
        path
    }

    /// Writes a config file made of [`TestEnv::globals`] followed by `bindings` (TOML text).
    pub fn config(&self, bindings: &str) -> PathBuf {
        self.write_config(&format!("{}\n{bindings}", self.globals()))
    }

    /// Starts `portbinder serve --config <config>` and waits until it is ready.
    pub fn serve(&self, config: &Path) -> Daemon {
        Daemon::start(&["--config".as_ref(), config.as_os_str()])
    }

    /// Spawns `client.py args...` as `user`, in the test's network namespace.
    pub fn client<S: AsRef<OsStr>>(&self, user: User, args: &[S]) -> Proc {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(&self.client_script)
            .args(args)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C.UTF-8");
        user.apply(&mut cmd);
        Proc::spawn(cmd, &format!("client.py as {}", user.name))
    }

    /// Runs the `probe` client as `user` against `socket` and returns what it received.
    pub fn probe(&self, user: User, socket: &Path) -> Probe {
        self.client(user, &["probe".as_ref(), socket.as_os_str()])
            .finish(EXIT_TIMEOUT)
            .json()
    }
}

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

/// A set of credentials to run a client with (Debian's standard accounts).
#[derive(Clone, Copy, Debug)]
pub struct User {
    /// Name, for messages and for the `user=` field of audit lines.
    pub name: &'static str,
    /// Real and effective uid.
    pub uid: u32,
    /// Real and effective gid.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: &'static [u32],
}

/// www-data (33:33), the group of the bindings in most tests.
pub const WWW_DATA: User = User {
    name: "www-data",
    uid: 33,
    gid: 33,
    groups: &[33],
};
/// nobody (65534, group nogroup 65534), also the daemon's run user.
pub const NOBODY: User = User {
    name: "nobody",
    uid: 65534,
    gid: 65534,
    groups: &[65534],
};
/// daemon (1:1), in no group of interest.
pub const DAEMON: User = User {
    name: "daemon",
    uid: 1,
    gid: 1,
    groups: &[1],
};
/// daemon (1:1) with www-data (33) as a supplementary group.
pub const DAEMON_IN_WWW_DATA: User = User {
    name: "daemon",
    uid: 1,
    gid: 1,
    groups: &[1, 33],
};
/// root (0:0); gets no exception from the daemon.
pub const ROOT: User = User {
    name: "root",
    uid: 0,
    gid: 0,
    groups: &[0],
};

impl User {
    /// Makes `cmd` run with these credentials (groups, gid, then uid, before exec).
    ///
    /// `CommandExt::groups` is unstable and `CommandExt::uid` clears the supplementary groups
    /// after any `pre_exec` hook could set them, so all three are set in one hook.
    pub fn apply(self, cmd: &mut Command) {
        let groups: Vec<libc::gid_t> = self.groups.to_vec();
        let (uid, gid) = (self.uid, self.gid);
        // SAFETY: the hook runs in the forked child before exec and only makes the
        // async-signal-safe system calls setgroups, setgid and setuid, reading memory that was
        // allocated before the fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

/// How a finished process ended and what it printed.
#[derive(Debug)]
pub struct Outcome {
    /// What `wait` returned.
    pub status: ExitStatus,
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl Outcome {
    /// Asserts a clean exit (status 0).
    pub fn assert_success(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected exit 0:\n{self}");
        self
    }

    /// Asserts the daemon's error contract: exit `code`, stderr starting with
    /// `portbinder: error:` and mentioning every one of `needles`.
    pub fn assert_error(&self, code: i32, needles: &[&str]) -> &Self {
        assert_eq!(self.code, Some(code), "expected exit {code}:\n{self}");
        assert!(
            self.stderr.starts_with("portbinder: error:"),
            "stderr must start with `portbinder: error:`:\n{self}"
        );
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr must mention {needle:?}:\n{self}"
            );
        }
        self
    }

    /// Parses the last line of stdout as JSON.
    pub fn json<T: for<'de> Deserialize<'de>>(&self) -> T {
        assert_eq!(self.code, Some(0), "client failed:\n{self}");
        let line = self.stdout.lines().last().unwrap_or_default();
        serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("bad JSON from client ({e}): {line:?}\n{self}"))
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status: {}\n--- stdout ---\n{}--- stderr ---\n{}--- end ---",
            self.status, self.stdout, self.stderr
        )
    }
}

/// A spawned child (stdin from /dev/null) whose stdout and stderr are collected by background
/// threads (stdout is also available line by line). Killed on drop if still running.
pub struct Proc {
    name: String,
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    lines: Receiver<String>,
    readers: Vec<JoinHandle<()>>,
}

impl Proc {
    /// Spawns `cmd` with piped stdio; `name` is used in failure messages.
    pub fn spawn(mut cmd: Command, name: &str) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let out_reader = {
            let (pipe, buf) = (child.stdout.take().unwrap(), stdout.clone());
            thread::spawn(move || {
                let mut pipe = BufReader::new(pipe);
                let mut line = Vec::new();
                while matches!(pipe.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    buf.lock().unwrap().push_str(&text);
                    let _ = tx.send(text.trim_end_matches('\n').to_owned());
                    line.clear();
                }
            })
        };
        let err_reader = {
            let (mut pipe, buf) = (child.stderr.take().unwrap(), stderr.clone());
            thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                    buf.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            })
        };
        Proc {
            name: name.to_owned(),
            child,
            stdout,
            stderr,
            lines,
            readers: vec![out_reader, err_reader],
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the child wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything the child wrote to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// The next stdout line, waiting at most `timeout`; panics with the output otherwise.
    pub fn next_line(&mut self, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "{}: no output line within {timeout:?}\n{}",
                    self.name,
                    self.report()
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                let _ = self.wait_timeout(Duration::from_secs(5));
                panic!("{}: stdout closed\n{}", self.name, self.report())
            }
        }
    }

    /// Waits for the stdout line `expected`, panicking on any other line or on timeout.
    pub fn expect_line(&mut self, expected: &str, timeout: Duration) {
        let line = self.next_line(timeout);
        assert_eq!(
            line,
            expected,
            "{}: unexpected output\n{}",
            self.name,
            self.report()
        );
    }

    /// The exit status if the child has exited (reaping it), `None` while it runs.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits at most `timeout` for the child to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.try_status();
            status.is_some()
        });
        status
    }

    /// Sends `sig` to the child.
    pub fn signal(&self, sig: Signal) {
        signal::kill(Pid::from_raw(self.pid() as i32), sig)
            .unwrap_or_else(|e| panic!("{}: kill({sig}): {e}", self.name));
    }

    /// Waits at most `timeout` for the child to exit (killing it and panicking otherwise) and
    /// returns its status and complete output.
    pub fn finish(mut self, timeout: Duration) -> Outcome {
        let Some(status) = self.wait_timeout(timeout) else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "{}: still running after {timeout:?}\n{}",
                self.name,
                self.report()
            );
        };
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        Outcome {
            status,
            code: status.code(),
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }

    /// The output collected so far, for failure messages.
    pub fn report(&self) -> String {
        format!(
            "--- {} (pid {}) stdout ---\n{}--- stderr ---\n{}--- end ---",
            self.name,
            self.pid(),
            self.stdout(),
            self.stderr()
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The daemon
// ---------------------------------------------------------------------------------------------

/// The binary under test.
pub fn binary() -> PathBuf {
    std::env::var_os("PORTBINDER_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_portbinder")))
}

/// The file rsyslogd writes every message to (set by `scripts/test`).
pub fn syslog_path() -> PathBuf {
    std::env::var_os("PORTBINDER_TEST_SYSLOG")
        .map(PathBuf::from)
        .expect("PORTBINDER_TEST_SYSLOG is not set: run the suite with `bash scripts/test`")
}

/// The size of the syslog file now: lines after this offset were written later.
pub fn syslog_offset() -> u64 {
    fs::metadata(syslog_path())
        .expect("syslog file (is rsyslogd running?)")
        .len()
}

/// The complete lines of the syslog file from byte `offset` on, from any sender.
pub fn syslog_lines_since(offset: u64) -> Vec<String> {
    let mut file = fs::File::open(syslog_path()).expect("open syslog file");
    file.seek(SeekFrom::Start(offset)).unwrap();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).unwrap();
    // A line that rsyslogd is still writing has no newline yet: leave it for the next read.
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[..complete])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `portbinder <args...>` with stdio piped, ready for [`Proc::spawn`] or [`Daemon::spawn`].
pub fn portbinder_command<S: AsRef<OsStr>>(args: &[S]) -> Command {
    let mut cmd = Command::new(binary());
    cmd.args(args);
    cmd
}

/// Runs `portbinder <args...>` to completion (bounded by [`EXIT_TIMEOUT`]).
pub fn run<S: AsRef<OsStr>>(args: &[S]) -> Outcome {
    Proc::spawn(portbinder_command(args), "portbinder").finish(EXIT_TIMEOUT)
}

/// Runs `portbinder check <args...>`.
pub fn run_check<S: AsRef<OsStr>>(args: &[S]) -> Outcome {
    let mut all: Vec<&OsStr> = vec![OsStr::new("check")];
    all.extend(args.iter().map(AsRef::as_ref));
    run(&all)
}

/// Runs `portbinder serve <args...>`, which is expected to fail: panics if it is still running
/// after [`EXIT_TIMEOUT`] (it is killed then).
pub fn run_serve_expect_failure<S: AsRef<OsStr>>(args: &[S]) -> Outcome {
    let mut all: Vec<&OsStr> = vec![OsStr::new("serve")];
    all.extend(args.iter().map(AsRef::as_ref));
    let outcome = run(&all);
    assert_ne!(
        outcome.code,
        Some(0),
        "serve was expected to fail:\n{outcome}"
    );
    outcome
}

/// A running `portbinder serve`, killed on drop.
pub struct Daemon {
    proc: Proc,
    log_offset: u64,
}

impl Daemon {
    /// Starts `portbinder serve <args...>` and waits until it logs `event=ready`.
    pub fn start<S: AsRef<OsStr>>(args: &[S]) -> Daemon {
        let mut cmd = portbinder_command(&["serve"]);
        cmd.args(args);
        Daemon::spawn(cmd)
    }

    /// Spawns `cmd` (a `portbinder serve` whose pid is the daemon's, e.g. through
    /// `sh -c 'exec ...'`) and waits until it logs `event=ready` to syslog or, with
    /// `--log stderr`, to stderr. Panics with the daemon's output if it exits or times out.
    pub fn spawn(cmd: Command) -> Daemon {
        let log_offset = syslog_offset();
        let mut daemon = Daemon {
            proc: Proc::spawn(cmd, "portbinder serve"),
            log_offset,
        };
        let ready = wait_until(STARTUP_TIMEOUT, || {
            daemon.proc.stderr().contains("event=ready")
                || daemon
                    .log_lines()
                    .iter()
                    .any(|l| l.contains(": event=ready"))
                || daemon.proc.try_status().is_some()
        });
        if let Some(status) = daemon.proc.try_status() {
            thread::sleep(Duration::from_millis(200));
            panic!(
                "daemon exited during start-up ({status})\n{}",
                daemon.report()
            );
        }
        assert!(
            ready,
            "daemon not ready after {STARTUP_TIMEOUT:?}\n{}",
            daemon.report()
        );
        daemon
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// What the daemon wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.proc.stderr()
    }

    /// The syslog lines this daemon wrote (`portbinder[PID]:`), oldest first.
    pub fn log_lines(&self) -> Vec<String> {
        let tag = format!("portbinder[{}]:", self.pid());
        syslog_lines_since(self.log_offset)
            .into_iter()
            .filter(|l| l.contains(&tag))
            .collect()
    }

    /// This daemon's audit events (parsed syslog lines), oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.log_lines().iter().map(|l| Event::parse(l)).collect()
    }

    /// This daemon's audit events of one kind (`event=KIND`).
    pub fn events_of(&self, kind: &str) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|e| e.kind() == kind)
            .collect()
    }

    /// Waits until a line of this daemon contains `pattern` and returns it.
    pub fn wait_log(&self, pattern: &str) -> String {
        let mut found = None;
        wait_until(LOG_TIMEOUT, || {
            found = self.log_lines().into_iter().find(|l| l.contains(pattern));
            found.is_some()
        });
        found.unwrap_or_else(|| {
            panic!(
                "no log line containing {pattern:?} within {LOG_TIMEOUT:?}\n{}",
                self.report()
            )
        })
    }

    /// Waits until this daemon logs an event of `kind` matching every `key=value` of `fields`.
    pub fn wait_event(&self, kind: &str, fields: &[(&str, &str)]) -> Event {
        let mut found = None;
        wait_until(LOG_TIMEOUT, || {
            found = self
                .events_of(kind)
                .into_iter()
                .find(|e| fields.iter().all(|(k, v)| e.get(k) == Some(v)));
            found.is_some()
        });
        found.unwrap_or_else(|| {
            panic!(
                "no event={kind} with {fields:?} within {LOG_TIMEOUT:?}\n{}",
                self.report()
            )
        })
    }

    /// Sends `sig` to the daemon.
    pub fn signal(&self, sig: Signal) {
        self.proc.signal(sig);
    }

    /// True while the daemon has not exited.
    pub fn is_running(&mut self) -> bool {
        self.proc.try_status().is_none()
    }

    /// Sends `sig` and waits (bounded) for the daemon to exit; returns its status.
    pub fn stop_with(&mut self, sig: Signal) -> ExitStatus {
        self.signal(sig);
        self.proc.wait_timeout(EXIT_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "daemon still running {EXIT_TIMEOUT:?} after {sig}\n{}",
                self.report()
            )
        })
    }

    /// SIGTERM, then waits (bounded) for the daemon to exit; returns its status.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_with(Signal::SIGTERM)
    }

    /// The number of open fds of the daemon (`/proc/PID/fd`).
    pub fn fd_count(&self) -> usize {
        proc_fds(self.pid()).len()
    }

    /// Waits (bounded) until the daemon's fd count equals `expected`; panics otherwise.
    pub fn wait_fd_count(&self, expected: usize) {
        let ok = wait_until(Duration::from_secs(5), || self.fd_count() == expected);
        assert!(
            ok,
            "daemon has {} fds, expected {expected}: {:?}\n{}",
            self.fd_count(),
            proc_fd_links(self.pid()),
            self.report()
        );
    }

    /// The fields of `/proc/PID/status`.
    pub fn proc_status(&self) -> HashMap<String, String> {
        fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
            .collect()
    }

    /// CPU time used so far (utime + stime, in clock ticks, from `/proc/PID/stat`).
    pub fn cpu_ticks(&self) -> u64 {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name, which is in parentheses and may contain spaces.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after `(comm)`.
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// The daemon's stderr and syslog lines, for failure messages.
    pub fn report(&self) -> String {
        format!(
            "--- daemon pid {} stderr ---\n{}--- daemon syslog lines ---\n{}\n--- end ---",
            self.pid(),
            self.stderr(),
            self.log_lines().join("\n")
        )
    }
}

/// The fd numbers open in process `pid`.
pub fn proc_fds(pid: u32) -> Vec<i32> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// `fd -> link target` for every fd open in process `pid`, for failure messages.
pub fn proc_fd_links(pid: u32) -> Vec<(i32, String)> {
    let mut links: Vec<(i32, String)> = proc_fds(pid)
        .into_iter()
        .filter_map(|fd| {
            let target = fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
            Some((fd, target.display().to_string()))
        })
        .collect();
    links.sort();
    links
}

// ---------------------------------------------------------------------------------------------
// Audit lines
// ---------------------------------------------------------------------------------------------

/// One syslog line of the daemon: `facility.severity portbinder[PID]: event=KIND key=value...`.
#[derive(Clone, Debug)]
pub struct Event {
    /// The whole line as rsyslogd wrote it.
    pub line: String,
    /// Syslog facility name (`authpriv`, `local3`...).
    pub facility: String,
    /// Syslog severity name (`notice`, `warning`...).
    pub severity: String,
    /// The message body after the tag.
    pub body: String,
    /// `key=value` pairs in order; quoted values keep their escapes, without the quotes.
    pub fields: Vec<(String, String)>,
}

impl Event {
    /// Parses a line; malformed field syntax is kept as it comes (see [`Event::format_errors`]).
    pub fn parse(line: &str) -> Event {
        let (prio, rest) = line.split_once(' ').unwrap_or((line, ""));
        let (facility, severity) = prio.split_once('.').unwrap_or((prio, ""));
        let body = rest.split_once("]: ").map_or(rest, |(_, b)| b);
        Event {
            line: line.to_owned(),
            facility: facility.to_owned(),
            severity: severity.to_owned(),
            body: body.to_owned(),
            fields: split_fields(body),
        }
    }

    /// The value of `event=`.
    pub fn kind(&self) -> &str {
        self.get("event").unwrap_or("")
    }

    /// The value of the first field named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, parsed as a number (panics if absent or not a number).
    pub fn number(&self, key: &str) -> u64 {
        self.get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no numeric {key}= in {:?}", self.line))
    }

    /// Asserts that the fields `expected` are present with these values and in this order;
    /// other fields may come between them (the spec's lines are the minimum).
    pub fn assert_fields(&self, expected: &[(&str, &str)]) {
        let mut fields = self.fields.iter();
        for (key, value) in expected {
            let found = fields.by_ref().find(|(k, _)| k == key);
            assert_eq!(
                found.map(|(_, v)| v.as_str()),
                Some(*value),
                "field {key} (in this order: {expected:?}) of {:?}",
                self.line
            );
        }
    }

    /// Where the body breaks the audit format: it must start with `event=`, every field is
    /// `key=value`, bare values use only `[A-Za-z0-9._:/@,+%\[\]-]`, and quoted values hold
    /// only printable ASCII other than `"` and `\`, except `\xHH` escapes.
    pub fn format_errors(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if !self.body.starts_with("event=") {
            errors.push("does not start with event=".to_owned());
        }
        let mut rest = self.body.as_str();
        while !rest.is_empty() {
            let Some((key, after)) = rest.split_once('=') else {
                errors.push(format!("no `=` in {rest:?}"));
                break;
            };
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                errors.push(format!("bad key {key:?}"));
            }
            let (value_ok, after) = if let Some(quoted) = after.strip_prefix('"') {
                match quoted.find('"') {
                    Some(end) => (quoted_ok(&quoted[..end]), &quoted[end + 1..]),
                    None => (false, ""),
                }
            } else {
                let end = after.find(' ').unwrap_or(after.len());
                (bare_ok(&after[..end]), &after[end..])
            };
            if !value_ok {
                errors.push(format!("bad value for {key}"));
            }
            rest = match after.strip_prefix(' ') {
                Some(r) => r,
                None if after.is_empty() => after,
                None => {
                    errors.push(format!("no space after {key}"));
                    break;
                }
            };
        }
        errors
    }
}

/// A bare value: non-empty, only `[A-Za-z0-9._:/@,+%\[\]-]`.
fn bare_ok(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/@,+%[]-".contains(&b))
}

/// The inside of a quoted value: printable ASCII without `"` or `\`, plus `\xHH` escapes.
fn quoted_ok(value: &str) -> bool {
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                let hex = bytes.get(i + 1..i + 4);
                if !matches!(hex, Some([b'x', h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit())
                {
                    return false;
                }
                i += 4;
            }
            b' '..=b'~' if bytes[i] != b'"' => i += 1,
            _ => return false,
        }
    }
    true
}

/// Splits `k=v k="quoted v" ...` into pairs (lenient: used on any line).
fn split_fields(body: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut rest = body.trim_start();
    while let Some((key, after)) = rest.split_once('=') {
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').unwrap_or(quoted.len());
                (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
            }
            None => after.split_once(' ').unwrap_or((after, "")),
        };
        fields.push((key.to_owned(), value.to_owned()));
        rest = after.trim_start();
    }
    fields
}

// ---------------------------------------------------------------------------------------------
// What clients report
// ---------------------------------------------------------------------------------------------

/// The JSON line printed by `client.py probe` / `comm`.
#[derive(Debug, Deserialize)]
pub struct Probe {
    /// The client's pid (what the daemon should log as `pid=`).
    pub pid: u32,
    /// errno of a failed connect (e.g. EACCES from the socket file's mode).
    pub connect_errno: Option<i32>,
    /// Every payload byte received.
    pub payload: Vec<u8>,
    /// The text after a deny's 0 byte.
    pub reason: Option<String>,
    /// The sockets received, in order.
    pub fds: Vec<FdInfo>,
}

/// One socket received by a client.
#[derive(Debug, Deserialize)]
pub struct FdInfo {
    /// `AF_INET` or `AF_INET6`.
    pub family: String,
    /// `SOCK_STREAM` or `SOCK_DGRAM`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Local address and port.
    pub addr: (String, u16),
    /// SO_ACCEPTCONN.
    pub listening: bool,
    /// IPV6_V6ONLY (None for IPv4).
    pub v6only: Option<bool>,
    /// FD_CLOEXEC on the client's side.
    pub cloexec: bool,
    /// The socket's inode number.
    pub inode: u64,
}

impl Probe {
    /// Asserts a grant of `n` fds: payload `[n]`, `n` sockets, no reason.
    pub fn assert_granted(&self, n: usize) -> &Self {
        assert!(
            self.connect_errno.is_none()
                && self.payload == [n as u8]
                && self.fds.len() == n
                && self.reason.is_none(),
            "expected a grant of {n} fds, got {self:#?}"
        );
        self
    }

    /// Asserts a deny from the daemon: connected, payload 0 + a non-empty UTF-8 reason, no fds.
    pub fn assert_denied(&self) -> &Self {
        assert!(
            self.connect_errno.is_none()
                && self.payload.first() == Some(&0)
                && self.reason.as_deref().is_some_and(|r| !r.is_empty())
                && self.fds.is_empty(),
            "expected a deny from the daemon, got {self:#?}"
        );
        self
    }
}

/// Connects to `addr`, sends an HTTP/1.0 GET and returns the whole reply (bounded waits).
pub fn http_get(addr: &str) -> String {
    let addr: SocketAddr = addr.parse().unwrap();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .unwrap_or_else(|e| panic!("read reply from {addr}: {e}"));
    reply
}

// ---------------------------------------------------------------------------------------------
// Running the client side as other users
// ---------------------------------------------------------------------------------------------

impl TestEnv {
    /// Copies `src` into the test directory as `name`, mode 0755, so other users can run it
    /// whatever the permissions of the build tree (CI's clone may sit under /root).
    pub fn install(&self, src: &Path, name: &str) -> PathBuf {
        let dst = self.path().join(name);
        fs::copy(src, &dst).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).unwrap();
        dst
    }

    /// `portbinder <args...>` run as `user` from a copy of the binary in the test directory,
    /// with a clean environment (PATH only) and the test directory as working directory.
    pub fn portbinder_as<S: AsRef<OsStr>>(&self, user: User, args: &[S]) -> Command {
        let copy = self.path().join("portbinder");
        if !copy.exists() {
            self.install(&binary(), "portbinder");
        }
        let mut cmd = Command::new(copy);
        cmd.args(args)
            .current_dir(self.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C.UTF-8");
        user.apply(&mut cmd);
        cmd
    }

    /// The LD_PRELOAD shim, copied into the test directory.
    pub fn preload_lib(&self) -> PathBuf {
        let built = binary().with_file_name("libportbinder_preload.so");
        self.install(&built, "libportbinder_preload.so")
    }
}

/// A file built next to the binary under test (`target/debug/examples/NAME`, …).
pub fn built(relative: &str) -> PathBuf {
    binary().with_file_name(relative)
}

/// Like [`http_get`], but an error (nothing listening yet, reset…) is returned, not a panic.
pub fn try_http_get(addr: &str) -> io::Result<String> {
    let addr: SocketAddr = addr.parse().map_err(io::Error::other)?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}
