//! The daemon's Landlock ruleset: it confines files (read /etc, /proc and the configuration's
//! directory, remove only in the socket directory), the network (no TCP connect or bind) and
//! signals and abstract sockets (none beyond the sandbox), each as far as the kernel's Landlock
//! ABI goes.
//!
//! The ruleset is checked in a child process that installs exactly what the daemon installs
//! (`portbinder::serve::sandbox::Landlock`) in `pre_exec`, then makes one system call: the child
//! reports that call's errno through the spawn error channel (0: it succeeded).

mod common;

use std::ffi::CString;
use std::fs;
use std::io;
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use portbinder::serve::sandbox::Landlock;

/// What a child confined by the daemon's ruleset (socket directory `dir`, configuration in
/// the directory `conf` beside it) gets for `call`: 0 or the errno.
fn under_landlock(dir: &Path, call: impl Fn() -> io::Result<()> + Send + Sync + 'static) -> i32 {
    confined(dir, Some(call))
}

/// What exec'ing /bin/true gets under the daemon's ruleset: 0 or the errno.
fn exec_under_landlock(dir: &Path) -> i32 {
    confined(dir, None::<fn() -> io::Result<()>>)
}

fn confined(dir: &Path, call: Option<impl Fn() -> io::Result<()> + Send + Sync + 'static>) -> i32 {
    // The daemon builds its rules on the socket directory it opened and checked, and on its
    // configuration's directory, opened before the drop.
    let opened = fs::File::open(dir).expect("open the socket directory");
    let conf =
        fs::File::open(dir.with_file_name("conf")).expect("open the configuration's directory");
    let mut ruleset = Some(
        Landlock::prepare(opened.as_fd(), None, Some(conf.as_fd())).expect("build the ruleset"),
    );
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
    let conf = env.path().join("conf");
    fs::create_dir(&conf).unwrap();
    let config = conf.join("portbinder.toml");
    fs::write(&config, "").unwrap();
    let abi = kernel_landlock_abi();
    // Without Landlock every denial below would be expected as 0, and nothing checked.
    assert!(
        abi >= 1,
        "this kernel has no Landlock (ABI {abi}): nothing would be confined"
    );
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
    assert_eq!(under_landlock(&dir, open_ro(&config, 0)), 0, "a reload");
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
    assert_eq!(under_landlock(&dir, unlink(&config)), denied_from(1));
    assert_eq!(
        under_landlock(
            &dir,
            open(&conf.join("new"), libc::O_WRONLY | libc::O_CREAT)
        ),
        denied_from(1)
    );
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
