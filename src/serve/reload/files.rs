//! What a reload changes on a binding's socket file and sockets, with no privilege: the file's
//! mode (the run user owns it) and the TCP sockets' backlog (listen(2) again). The file is
//! reached through the socket directory's checked descriptor, never a path that could lead
//! elsewhere; removing it is the endpoint's own business (src/serve/setup/endpoint.rs).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, OFlag, openat};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, fchmodat, fstat};
use nix::unistd::Uid;

use crate::config::address::{ListenAddr, Proto};

/// Sets the mode of the socket file `file` in the directory `dir`, if it is still a socket
/// owned by `owner` (the daemon's user): it is opened without following a link
/// (O_PATH|O_NOFOLLOW), checked by fstat, and changed through its /proc/self/fd link, so a
/// symlink the run user put in its place is never followed. EPERM: it is something else now.
pub fn chmod_socket_file(
    dir: BorrowedFd<'_>,
    file: &str,
    owner: Uid,
    mode: u32,
) -> Result<(), Errno> {
    let fd = openat(
        dir,
        file,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let stat = fstat(&fd)?;
    let socket = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFSOCK;
    if !socket || stat.st_uid != owner.as_raw() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::os::unix::net::UnixListener;

    fn me() -> Uid {
        Uid::effective()
    }

    fn dir() -> (tempfile::TempDir, std::fs::File) {
        let tmp = tempfile::tempdir().unwrap();
        let fd = std::fs::File::open(tmp.path()).unwrap();
        (tmp, fd)
    }

    #[test]
    fn the_mode_of_a_socket_file_changes_and_a_link_is_not_followed() {
        let (tmp, fd) = dir();
        let _listener = UnixListener::bind(tmp.path().join("http.sock")).unwrap();
        chmod_socket_file(fd.as_fd(), "http.sock", me(), 0o666).unwrap();
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
            chmod_socket_file(fd.as_fd(), "link.sock", me(), 0o666),
            Err(Errno::EPERM)
        );
        assert_eq!(
            chmod_socket_file(fd.as_fd(), "target", me(), 0o666),
            Err(Errno::EPERM),
            "not a socket"
        );
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the link's target is untouched");
    }
}
