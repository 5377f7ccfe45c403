//! The sandbox of the serving process: the running daemon is under seccomp (Seccomp: 2) and
//! Landlock and says so; the production filter kills a process that makes a forbidden
//! system call; the production ruleset confines files, network and signals; glibc's syslog
//! reconnect and the clean stop work inside it, and a socket directory swapped for a
//! symlink is not followed at stop.
//!
//! The filter and the ruleset are checked in a child process that installs exactly what
//! the daemon installs (`portbinder::sandbox`) in `pre_exec`, then makes one system call:
//! the child reports that call's errno through the spawn error channel (0: it succeeded)
//! or dies of SIGSYS.

mod common;

use std::ffi::CString;
use std::fs;
use std::io;
use std::net::TcpListener;
use std::os::unix::fs::{PermissionsExt, chown, symlink};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use portbinder::sandbox::{Landlock, Seccomp};

/// The kernel's Landlock ABI (0 without Landlock), asked the way the landlock crate asks.
fn kernel_landlock_abi() -> i32 {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) reads no
    // memory and only returns the ABI version (or -1 with errno).
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    abi.max(0) as i32
}

#[test]
fn the_serving_daemon_is_under_seccomp_and_landlock_and_says_so() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(HTTP_BINDING));
    let status = daemon.proc_status();
    assert_eq!(
        status.get("Seccomp").map(String::as_str),
        Some("2"),
        "{status:?}"
    );
    assert_eq!(status.get("Seccomp_filters").map(String::as_str), Some("1"));
    assert_eq!(status.get("NoNewPrivs").map(String::as_str), Some("1"));

    let abi = kernel_landlock_abi();
    let (landlock, shown_abi) = match abi {
        0 => ("none", 0),
        1..=9 => ("partial", abi),
        _ => ("full", 10),
    };
    daemon
        .wait_event("drop", &[("result", "verified")])
        .assert_fields(&[
            ("no_new_privs", "1"),
            ("seccomp", "kill-process"),
            ("landlock", landlock),
            ("landlock_abi", &shown_abi.to_string()),
        ]);
    // And it serves under them.
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(1);
}

// ---- the seccomp filter ---------------------------------------------------------------------

/// A raw system call: its number and six arguments (pointers only to static memory).
type Call = (libc::c_long, [libc::c_long; 6]);

/// Makes `call` in a child after installing the daemon's seccomp filter, then exits 0 (or,
/// without a call, execs /bin/true). Returns how the child ended.
fn under_seccomp(call: Option<Call>) -> std::process::ExitStatus {
    let seccomp = Seccomp::prepare().expect("compile the filter");
    let mut cmd = Command::new("/bin/true");
    cmd.stdin(Stdio::null());
    // SAFETY: between fork and exec the hook only installs the already compiled filter (a
    // prctl and a seccomp system call) and makes one raw system call whose pointer
    // arguments are null or point to static memory; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            seccomp
                .enforce()
                .map_err(|_| io::Error::from_raw_os_error(libc::ENOTRECOVERABLE))?;
            if let Some((nr, [a, b, c, d, e, f])) = call {
                libc::syscall(nr, a, b, c, d, e, f);
                libc::_exit(0);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn the confined child");
    child.wait().unwrap()
}

fn assert_killed(what: &str, status: std::process::ExitStatus) {
    assert_eq!(
        status.signal(),
        Some(libc::SIGSYS),
        "{what} must be killed by SIGSYS, got {status}"
    );
}

#[test]
fn forbidden_system_calls_kill_the_process() {
    use libc::*;
    const PATH: &std::ffi::CStr = c"/tmp/portbinder-seccomp-test";
    let forbidden: [(&str, Call); 7] = [
        (
            "socket(AF_INET)",
            (SYS_socket, [AF_INET.into(), SOCK_STREAM.into(), 0, 0, 0, 0]),
        ),
        (
            "openat for writing",
            (
                SYS_openat,
                [
                    AT_FDCWD.into(),
                    PATH.as_ptr() as c_long,
                    (O_WRONLY | O_CREAT).into(),
                    0o600,
                    0,
                    0,
                ],
            ),
        ),
        (
            "mmap(PROT_EXEC)",
            (
                SYS_mmap,
                [
                    0,
                    4096,
                    (PROT_READ | PROT_EXEC).into(),
                    (MAP_PRIVATE | MAP_ANONYMOUS).into(),
                    -1,
                    0,
                ],
            ),
        ),
        ("kill", (SYS_kill, [1, 0, 0, 0, 0, 0])),
        (
            "ptrace",
            (SYS_ptrace, [PTRACE_TRACEME.into(), 0, 0, 0, 0, 0]),
        ),
        (
            "getsockopt(SO_PEERSEC)",
            (
                SYS_getsockopt,
                [0, SOL_SOCKET.into(), SO_PEERSEC.into(), 0, 0, 0],
            ),
        ),
        (
            "pidfd_send_signal(SIGKILL)",
            (SYS_pidfd_send_signal, [0, SIGKILL.into(), 0, 0, 0, 0]),
        ),
    ];
    assert_killed("execve", under_seccomp(None));
    for (what, call) in forbidden {
        assert_killed(what, under_seccomp(Some(call)));
    }
    // What glibc's syslog reconnect needs is allowed.
    let unix = (SYS_socket, [AF_UNIX.into(), SOCK_DGRAM.into(), 0, 0, 0, 0]);
    let allowed = under_seccomp(Some(unix));
    assert_eq!(allowed.code(), Some(0), "socket(AF_UNIX): {allowed}");
}

// ---- the Landlock ruleset -------------------------------------------------------------------

/// What a child confined by the daemon's ruleset (socket directory `dir`) gets for `call`:
/// 0 or the errno.
fn under_landlock(dir: &Path, call: impl Fn() -> io::Result<()> + Send + Sync + 'static) -> i32 {
    confined(dir, Some(call))
}

/// What exec'ing /bin/true gets under the daemon's ruleset: 0 or the errno.
fn exec_under_landlock(dir: &Path) -> i32 {
    confined(dir, None::<fn() -> io::Result<()>>)
}

fn confined(dir: &Path, call: Option<impl Fn() -> io::Result<()> + Send + Sync + 'static>) -> i32 {
    let mut ruleset = Some(Landlock::prepare(dir, None).expect("build the ruleset"));
    let mut cmd = Command::new("/bin/true");
    cmd.stdin(Stdio::null());
    // SAFETY: between fork and exec the hook only calls landlock_restrict_self (through the
    // prepared ruleset) and the system call under test; its result leaves the child as the
    // spawn error, which is how the parent learns it.
    unsafe {
        cmd.pre_exec(move || {
            ruleset
                .take()
                .expect("one spawn per ruleset")
                .enforce()
                .map_err(|_| io::Error::from_raw_os_error(libc::ENOTRECOVERABLE))?;
            match &call {
                None => Ok(()),
                Some(call) => Err(call().err().unwrap_or(io::Error::from_raw_os_error(0))),
            }
        });
    }
    match cmd.spawn() {
        Err(e) => e.raw_os_error().expect("an errno from the child"),
        Ok(mut child) => {
            let status = child.wait().unwrap();
            assert!(status.success(), "/bin/true under Landlock: {status}");
            0
        }
    }
}

fn cstring(path: &Path) -> CString {
    CString::new(path.as_os_str().as_encoded_bytes()).unwrap()
}

/// A system call result as `io::Result`.
fn sys(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn open_ro(path: &Path, flags: libc::c_int) -> impl Fn() -> io::Result<()> + Send + Sync + 'static {
    open(path, libc::O_RDONLY | flags)
}

fn open(path: &Path, flags: libc::c_int) -> impl Fn() -> io::Result<()> + Send + Sync + 'static {
    let path = cstring(path);
    // SAFETY: `path` is a NUL-terminated string owned by the closure; a mode is passed for
    // O_CREAT.
    move || sys(unsafe { libc::open(path.as_ptr(), flags, 0o600) })
}

fn unlink(path: &Path) -> impl Fn() -> io::Result<()> + Send + Sync + 'static {
    let path = cstring(path);
    // SAFETY: `path` is a NUL-terminated string owned by the closure.
    move || sys(unsafe { libc::unlink(path.as_ptr()) })
}

fn signal_0(pid: libc::pid_t) -> impl Fn() -> io::Result<()> + Send + Sync + 'static {
    // SAFETY: kill with signal 0 passes no memory and sends nothing.
    move || sys(unsafe { libc::kill(pid, 0) })
}

#[test]
fn landlock_confines_files_network_and_signals() {
    let env = TestEnv::new();
    let dir = env.path().join("run");
    fs::create_dir(&dir).unwrap();
    let inside = dir.join("stale.sock");
    fs::write(&inside, "").unwrap();
    let outside = env.path().join("secret");
    fs::write(&outside, "not for the daemon\n").unwrap();
    let abi = kernel_landlock_abi();
    let denied_from = |version: i32| if abi >= version { libc::EACCES } else { 0 };

    // Allowed: what the serve loop reads and, at stop, removes.
    assert_eq!(
        under_landlock(&dir, open_ro(Path::new("/etc/passwd"), 0)),
        0
    );
    assert_eq!(
        under_landlock(&dir, open_ro(Path::new("/proc/self/comm"), 0)),
        0
    );
    assert_eq!(under_landlock(&dir, unlink(&inside)), 0);
    // Denied from ABI 1: reading elsewhere, listing directories, creating files, removing
    // outside the socket directory, executing.
    assert_eq!(under_landlock(&dir, open_ro(&outside, 0)), denied_from(1));
    assert_eq!(
        under_landlock(&dir, open_ro(Path::new("/etc"), libc::O_DIRECTORY)),
        denied_from(1)
    );
    assert_eq!(
        under_landlock(&dir, open(&dir.join("new"), libc::O_WRONLY | libc::O_CREAT)),
        denied_from(1)
    );
    assert_eq!(under_landlock(&dir, unlink(&outside)), denied_from(1));
    assert_eq!(
        exec_under_landlock(&dir),
        denied_from(1),
        "exec of /bin/true"
    );
    // Denied from ABI 4: TCP connect and bind.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    assert_eq!(
        under_landlock(&dir, move || tcp(port, true)),
        denied_from(4),
        "TCP connect"
    );
    assert_eq!(
        under_landlock(&dir, || tcp(0, false)),
        denied_from(4),
        "TCP bind"
    );
    // Denied from ABI 6 (with EPERM): signals and abstract Unix sockets beyond the sandbox.
    let scoped = if abi >= 6 { libc::EPERM } else { 0 };
    let parent = std::process::id() as libc::pid_t;
    assert_eq!(
        under_landlock(&dir, signal_0(parent)),
        scoped,
        "signal to the parent"
    );
    let name = format!("portbinder-test-{}", std::process::id());
    let _abstract_listener = abstract_listener(&name);
    assert_eq!(
        under_landlock(&dir, move || abstract_connect(&name)),
        scoped,
        "connect to an abstract socket"
    );
    assert!(outside.exists() && !dir.join("new").exists());
}

/// Connects to (or binds) 127.0.0.1:`port` with a raw TCP socket.
fn tcp(port: u16, connect: bool) -> io::Result<()> {
    // SAFETY: a plain socket(2); the sockaddr_in is fully initialised and passed with its
    // size; the socket is closed on every path.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        sys(fd)?;
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        let ptr = (&addr as *const libc::sockaddr_in).cast();
        let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let ret = if connect {
            libc::connect(fd, ptr, len)
        } else {
            libc::bind(fd, ptr, len)
        };
        let result = sys(ret);
        libc::close(fd);
        result
    }
}

fn abstract_addr(name: &str) -> (libc::sockaddr_un, libc::socklen_t) {
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (slot, byte) in addr.sun_path[1..].iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    let len = size_of::<libc::sa_family_t>() + 1 + name.len();
    (addr, len as libc::socklen_t)
}

/// A listening abstract Unix socket `@name`, closed on drop.
fn abstract_listener(name: &str) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    let (addr, len) = abstract_addr(name);
    // SAFETY: socket, bind and listen with a fully initialised address of length `len`;
    // the new descriptor is owned by the returned OwnedFd only.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        assert_eq!(
            libc::bind(fd, (&addr as *const libc::sockaddr_un).cast(), len),
            0
        );
        assert_eq!(libc::listen(fd, 8), 0);
        owned
    }
}

fn abstract_connect(name: &str) -> io::Result<()> {
    let (addr, len) = abstract_addr(name);
    // SAFETY: as in abstract_listener; the socket is closed on every path.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
        sys(fd)?;
        let result = sys(libc::connect(
            fd,
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        ));
        libc::close(fd);
        result
    }
}

// ---- the sandbox at work --------------------------------------------------------------------

/// Receives syslog datagrams on `socket` until one contains `pattern` (bounded).
fn wait_datagram(socket: &UnixDatagram, pattern: &str) -> String {
    let deadline = Instant::now() + LOG_TIMEOUT;
    let mut buf = vec![0u8; 8192];
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let line = String::from_utf8_lossy(&buf[..n]).into_owned();
            if line.contains(pattern) {
                return line;
            }
            seen.push(line);
        }
    }
    panic!("no datagram containing {pattern:?} within {LOG_TIMEOUT:?}; got {seen:#?}");
}

/// A syslog socket at `path` that the daemon (user nobody) may send to.
fn log_socket(path: &Path) -> UnixDatagram {
    let socket = UnixDatagram::bind(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o666)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    socket
}

/// The syslog daemon restarts (its /dev/log is replaced by a new socket) under a serving
/// daemon: glibc's syslog reconnects from inside the sandbox (socket, connect, sendto are
/// allowed; Landlock ABI 9+ allows connecting in the log socket's directory), and the next
/// lines arrive at the new socket.
#[test]
fn syslog_reconnects_from_inside_the_sandbox() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    let dev: PathBuf = env.path().join("dev");
    fs::create_dir(&dev).unwrap();
    fs::set_permissions(&dev, fs::Permissions::from_mode(0o755)).unwrap();
    let log_path = dev.join("log");
    let first = log_socket(&log_path);

    // The daemon sees the test's directory as /dev, in a mount namespace of its own.
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
        .arg(r#"mount --bind "$0" /dev && exec "$@""#)
        .arg(&dev);
    let cmd = serve_under(cmd, &config);
    let mut daemon = Proc::spawn(cmd, "portbinder serve with a private /dev/log");
    wait_datagram(&first, "event=ready");
    let before = env.probe(WWW_DATA, &env.socket("http"));
    before.assert_granted(1);
    wait_datagram(
        &first,
        &format!("event=grant binding=http fds=1 pid={} ", before.pid),
    );

    drop(first);
    fs::remove_file(&log_path).unwrap();
    let second = log_socket(&log_path);
    let after = env.probe(WWW_DATA, &env.socket("http"));
    after.assert_granted(1);
    wait_datagram(
        &second,
        &format!("event=grant binding=http fds=1 pid={} ", after.pid),
    );

    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    wait_datagram(&second, "event=stop signal=SIGTERM grants=2");
    let status = daemon.wait_timeout(EXIT_TIMEOUT).expect("daemon stops");
    assert_eq!(status.code(), Some(0), "{}", daemon.report());
}

/// Whoever can write the socket directory's parent swaps the directory for a symlink to
/// another directory while the daemon serves: at stop, removing `<dir>/http.sock` would
/// follow the link, but Landlock allows removing files only beneath the directory the
/// daemon checked at start-up, so the other directory's file survives.
#[test]
fn a_socket_dir_swapped_for_a_symlink_is_not_followed_at_stop() {
    assert!(
        kernel_landlock_abi() >= 1,
        "this test needs a kernel with Landlock (5.13+, enabled in the LSM list)"
    );
    let env = TestEnv::new();
    let mut daemon = env.serve(&env.config(HTTP_BINDING));
    let victim = env.path().join("victim");
    fs::create_dir(&victim).unwrap();
    chown(&victim, Some(65534), Some(65534)).unwrap();
    let bait = victim.join("http.sock");
    fs::write(&bait, "someone else's file\n").unwrap();
    chown(&bait, Some(65534), Some(65534)).unwrap();
    fs::rename(env.socket_dir(), env.path().join("run.old")).unwrap();
    symlink(&victim, env.socket_dir()).unwrap();

    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.report());
    assert!(
        bait.exists(),
        "the daemon removed a file through the swapped-in symlink"
    );
}
