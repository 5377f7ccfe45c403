//! The daemon's seccomp filter: it kills a process that makes a forbidden system call
//! (execve, IPv4 sockets, opening for writing, executable memory, kill, ptrace, other socket
//! options, signals through pidfds) and allows what glibc's syslog reconnect and a reload need,
//! narrowed to what they set.
//!
//! The filter is checked in a child process that installs exactly what the daemon installs
//! (`portbinder::serve::sandbox::Seccomp`) in `pre_exec`, then makes one system call: the child
//! exits 0 when the call is allowed, or dies of SIGSYS.

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};

use portbinder::serve::sandbox::Seccomp;

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
    let forbidden: [(&str, Call); 9] = [
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
        // Recovery's calls, made at start-up only (src/serve/setup/recover/).
        ("pidfd_open", (SYS_pidfd_open, [1, 0, 0, 0, 0, 0])),
        ("pidfd_getfd", (SYS_pidfd_getfd, [0, 0, 0, 0, 0, 0])),
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

#[test]
fn what_a_reload_needs_is_allowed_and_no_more() {
    use libc::*;
    const PATH: &std::ffi::CStr = c"/nonexistent/portbinder-seccomp-test";
    let path = PATH.as_ptr() as c_long;
    let cwd: c_long = AT_FDCWD.into();
    // Each made on fd -1 or a missing path: it fails, but it is allowed, so the child lives.
    let allowed: [(&str, Call); 9] = [
        (
            "setsockopt(SO_KEEPALIVE)",
            (
                SYS_setsockopt,
                [-1, SOL_SOCKET.into(), SO_KEEPALIVE.into(), 0, 0, 0],
            ),
        ),
        (
            "setsockopt(TCP_KEEPIDLE)",
            (
                SYS_setsockopt,
                [-1, IPPROTO_TCP.into(), TCP_KEEPIDLE.into(), 0, 0, 0],
            ),
        ),
        (
            "setsockopt(IP_FREEBIND)",
            (
                SYS_setsockopt,
                [-1, IPPROTO_IP.into(), IP_FREEBIND.into(), 0, 0, 0],
            ),
        ),
        (
            "getsockopt(IPV6_V6ONLY)",
            (
                SYS_getsockopt,
                [-1, IPPROTO_IPV6.into(), IPV6_V6ONLY.into(), 0, 0, 0],
            ),
        ),
        ("listen", (SYS_listen, [-1, 16, 0, 0, 0, 0])),
        (
            "fcntl(F_GETFL)",
            (SYS_fcntl, [-1, F_GETFL.into(), 0, 0, 0, 0]),
        ),
        (
            "fcntl(F_SETFL, O_RDWR|O_NONBLOCK)",
            (
                SYS_fcntl,
                [-1, F_SETFL.into(), (O_RDWR | O_NONBLOCK).into(), 0, 0, 0],
            ),
        ),
        (
            "fchmodat(AT_FDCWD, 0660)",
            (SYS_fchmodat, [cwd, path, 0o660, 0, 0, 0]),
        ),
        ("readlinkat", (SYS_readlinkat, [cwd, path, 0, 0, 0, 0])),
    ];
    for (what, call) in allowed {
        let status = under_seccomp(Some(call));
        assert_eq!(status.code(), Some(0), "{what}: {status}");
    }
    let forbidden: [(&str, Call); 6] = [
        (
            "setsockopt(IP_TRANSPARENT)",
            (
                SYS_setsockopt,
                [-1, IPPROTO_IP.into(), IP_TRANSPARENT.into(), 0, 0, 0],
            ),
        ),
        (
            "setsockopt(SO_REUSEPORT)",
            (
                SYS_setsockopt,
                [-1, SOL_SOCKET.into(), SO_REUSEPORT.into(), 0, 0, 0],
            ),
        ),
        (
            "fcntl(F_SETFL, O_APPEND)",
            (SYS_fcntl, [-1, F_SETFL.into(), O_APPEND.into(), 0, 0, 0]),
        ),
        (
            "fcntl(F_SETOWN)",
            (SYS_fcntl, [-1, F_SETOWN.into(), 1, 0, 0, 0]),
        ),
        (
            "fchmodat(setuid)",
            (SYS_fchmodat, [cwd, path, 0o4755, 0, 0, 0]),
        ),
        (
            "fchmodat(a directory's descriptor)",
            (SYS_fchmodat, [3, path, 0o660, 0, 0, 0]),
        ),
    ];
    for (what, call) in forbidden {
        assert_killed(what, under_seccomp(Some(call)));
    }
}
