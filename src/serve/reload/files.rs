//! What a reload changes on a binding's socket file and sockets, with no privilege: the file's
//! mode (the run user owns it), the TCP sockets' backlog (listen(2) again), and the file's
//! removal when the binding is gone. Every step goes through the socket directory's checked
//! descriptor, never a path that could lead elsewhere.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, fchmodat, fstat};
use nix::unistd::{Uid, UnlinkatFlags, unlinkat};

use crate::config::address::{ListenAddr, Proto};

/// Sets the mode of the socket file `file` in the directory `dir`, if it is still a socket
/// of this process's user: it is opened without following a link (O_PATH|O_NOFOLLOW),
/// checked by fstat, and changed through its /proc/self/fd link, so a symlink the run user
/// put in its place is never followed.
pub fn chmod_socket_file(dir: BorrowedFd<'_>, file: &str, mode: u32) -> Result<(), Errno> {
    let fd = openat(
        dir,
        file,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let stat = fstat(&fd)?;
    let socket = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFSOCK;
    if !socket || stat.st_uid != Uid::effective().as_raw() {
        return Err(Errno::EPERM);
    }
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    fchmodat(
        AT_FDCWD,
        link.as_str(),
        Mode::from_bits_truncate(mode & 0o777),
        FchmodatFlags::FollowSymlink,
    )
}

/// Removes the socket file `file` from the directory `dir` (a binding that is gone).
pub fn remove_socket_file(dir: BorrowedFd<'_>, file: &str) -> Result<(), Errno> {
    match unlinkat(dir, file, UnlinkatFlags::NoRemoveDir) {
        Err(Errno::ENOENT) => Ok(()),
        other => other,
    }
}

/// Puts the TCP sockets among `fds` (bound to `listen`, in order) in listening state again
/// with `backlog`: Linux takes a new backlog on a socket that already listens.
pub fn relisten(fds: &[OwnedFd], listen: &[ListenAddr], backlog: u32) -> Result<(), Errno> {
    let backlog =
        nix::sys::socket::Backlog::new(i32::try_from(backlog).map_err(|_| Errno::EINVAL)?)?;
    for (fd, addr) in fds.iter().zip(listen) {
        if addr.proto == Proto::Tcp {
            nix::sys::socket::listen(&fd.as_fd(), backlog)?;
        }
    }
    Ok(())
}

/// Whether `file` in `dir` is still there (for the reload's own checks and its tests).
pub fn exists(dir: BorrowedFd<'_>, file: &str) -> bool {
    nix::sys::stat::fstatat(dir, file, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::os::unix::net::UnixListener;

    fn dir() -> (tempfile::TempDir, std::fs::File) {
        let tmp = tempfile::tempdir().unwrap();
        let fd = std::fs::File::open(tmp.path()).unwrap();
        (tmp, fd)
    }

    #[test]
    fn the_mode_of_a_socket_file_changes_and_a_link_is_not_followed() {
        let (tmp, fd) = dir();
        let _listener = UnixListener::bind(tmp.path().join("http.sock")).unwrap();
        chmod_socket_file(fd.as_fd(), "http.sock", 0o666).unwrap();
        let mode = std::fs::metadata(tmp.path().join("http.sock"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o666);

        let target = tmp.path().join("target");
        std::fs::write(&target, b"x").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        symlink(&target, tmp.path().join("link.sock")).unwrap();
        // O_PATH|O_NOFOLLOW opens the link itself, which is no socket.
        assert_eq!(
            chmod_socket_file(fd.as_fd(), "link.sock", 0o666),
            Err(Errno::EPERM)
        );
        assert_eq!(
            chmod_socket_file(fd.as_fd(), "target", 0o666),
            Err(Errno::EPERM),
            "not a socket"
        );
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the link's target is untouched");
    }

    #[test]
    fn removal_of_a_missing_file_is_no_error() {
        let (tmp, fd) = dir();
        let _listener = UnixListener::bind(tmp.path().join("dns.sock")).unwrap();
        assert!(exists(fd.as_fd(), "dns.sock"));
        remove_socket_file(fd.as_fd(), "dns.sock").unwrap();
        assert!(!exists(fd.as_fd(), "dns.sock"));
        remove_socket_file(fd.as_fd(), "dns.sock").unwrap();
    }
}
