//! Child processes ([`Proc`]) and how they ended ([`Outcome`]): output collected in the
//! background so that no pipe ever fills, every wait bounded, and the output in every failure
//! message.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use serde::Deserialize;

use super::wait_until;

/// Makes the child of `cmd` inherit `fd` (open in this process until the spawn) as its
/// descriptor `at`, without close-on-exec, as a parent hands a socket down (LISTEN_FDS) or
/// leaks one.
pub fn inherit_fd(cmd: &mut Command, fd: RawFd, at: RawFd) {
    // SAFETY: between fork and exec the hook only calls dup2 and fcntl, which are
    // async-signal-safe, on a descriptor the parent keeps open meanwhile.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto another number clears FD_CLOEXEC; onto itself it keeps it.
            let rc = if fd == at {
                libc::fcntl(at, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, at)
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

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

    /// Asserts exit 0 with nothing on standard error (no warning either).
    pub fn assert_quiet_success(&self) -> &Self {
        self.assert_success();
        assert_eq!(self.stderr, "", "expected nothing on stderr:\n{self}");
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
