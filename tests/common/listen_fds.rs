//! Starting the daemon the way systemd hands it sockets (socket activation, or a restart that
//! gives back its fd store): the descriptors at 3, 4, … and LISTEN_FDS, LISTEN_FDNAMES and
//! LISTEN_PID naming them.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::fcntl::{FcntlArg, fcntl};

use super::serve_under;

/// `portbinder serve --config CONFIG` inheriting `fds` (name, socket) at 3, 4, … with
/// LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID. LISTEN_PID must be the daemon's own pid, known
/// only once it runs: `sh` sets it to its `$$` and then execs the daemon, which keeps that pid.
pub fn serve_with_listen_fds(config: &Path, fds: &[(&str, BorrowedFd<'_>)]) -> Command {
    serve_with_listen_fds_under(&[], config, fds)
}

/// [`serve_with_listen_fds`] started through `wrapper` (a program and its arguments that end
/// by exec'ing the rest, such as `setpriv … --`), so that the pid is still the daemon's.
pub fn serve_with_listen_fds_under(
    wrapper: &[&OsStr],
    config: &Path,
    fds: &[(&str, BorrowedFd<'_>)],
) -> Command {
    // Out of the way of 3..3+n first, so that no dup2 below overwrites a source.
    let high: Vec<OwnedFd> = fds
        .iter()
        .map(|(_, fd)| {
            let raw = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(100)).unwrap();
            // SAFETY: fcntl just created this descriptor; it is owned here only.
            unsafe { OwnedFd::from_raw_fd(raw) }
        })
        .collect();
    let names: Vec<&str> = fds.iter().map(|(name, _)| *name).collect();
    let mut sh = Command::new("/bin/sh");
    sh.args(["-c", r#"LISTEN_PID=$$ exec "$0" "$@""#])
        .args(wrapper);
    let mut cmd = serve_under(sh, config);
    cmd.env("LISTEN_FDS", fds.len().to_string())
        .env("LISTEN_FDNAMES", names.join(":"));
    // SAFETY: the hook runs in the forked child before exec and only calls dup2, which is
    // async-signal-safe, on descriptors that `high` keeps open in the parent; dup2 clears
    // close-on-exec on the copies at 3, 4, ….
    unsafe {
        cmd.pre_exec(move || {
            for (i, fd) in high.iter().enumerate() {
                if libc::dup2(fd.as_raw_fd(), 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd
}
