//! Step 4 of start-up, first half: the socket directory, checked, opened and locked.
//!
//! The socket directory belongs to the run user, who can rename, replace or symlink
//! anything in it at any moment. So nothing follows a path in it: the directory is opened
//! once (through its parent, whose real path only root or the run user may change, and
//! with O_NOFOLLOW), and every later step works on that descriptor ([`SocketDir::fd`]):
//! the Unix sockets (src/serve/setup/endpoint.rs), their removal at stop, the sandbox's
//! rule. The one-daemon lock is a 0600 file inside it that no one else can open.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, fchown};

use crate::config::trust;

/// The mode of a socket directory that portbinder creates.
const DIR_MODE: u32 = 0o755;

/// The socket directory cannot be used or a Unix socket cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum SockDirError {
    /// The directory is unsafe to use.
    #[error("socket directory {}: {problem}", path.display())]
    Unsafe {
        /// The directory.
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
    /// A system call failed on `path`.
    #[error("cannot {op} {}: {errno}", path.display())]
    Sys {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        errno: Errno,
    },
}

pub(super) fn sys<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> SockDirError + 'a {
    move |errno| SockDirError::Sys {
        op,
        path: path.to_owned(),
        errno,
    }
}

/// The socket directory, opened without following links, and the daemon's lock on it.
#[derive(Debug)]
pub struct SocketDir {
    /// Its path, for messages and for the socket paths clients use.
    pub path: PathBuf,
    fd: OwnedFd,
    /// The lock file, held (flock) for the daemon's life.
    _lock: OwnedFd,
}

impl SocketDir {
    /// The directory as it was checked: every later step (the sockets, their removal at
    /// stop, the sandbox's rule) goes through this descriptor, never through the path.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The lock file in the socket directory: created by the daemon with mode 0600 (owned by
/// the run user), so no one else can open it, let alone lock it. It stays when the daemon
/// stops; the lock goes with the process.
pub const LOCK_FILE: &str = ".portbinder.lock";

pub(super) const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

pub(super) fn is_dir_owned_by(stat: &FileStat, owner: Uid) -> bool {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
        && stat.st_uid == owner.as_raw()
}

/// Makes sure `dir` is a real directory owned by `owner` that nobody else can write to,
/// below directories that nobody but root (or `owner`) can change, creating it (mode 0755,
/// owned by `owner`) if it does not exist, opens it, and locks it for the life of the
/// daemon: a second daemon on the same directory would replace the first one's sockets. A
/// symlink is refused, never followed.
pub fn prepare_dir(dir: &Path, owner: Uid, owner_gid: Gid) -> Result<SocketDir, SockDirError> {
    let (path, fd) = open_dir(dir, owner, owner_gid)?;
    let lock = open_lock(dir, &fd, owner, owner_gid)?;
    match crate::serve::sys::try_lock_exclusive(lock.as_fd()) {
        Ok(true) => Ok(SocketDir {
            path,
            fd,
            _lock: lock,
        }),
        Ok(false) => Err(SockDirError::Unsafe {
            path: dir.to_owned(),
            problem:
                "is in use by another portbinder: stop it, or give this one another socket_dir"
                    .into(),
        }),
        Err(e) => Err(sys("lock", &dir.join(LOCK_FILE))(Errno::from_raw(
            e.raw_os_error().unwrap_or(libc::EIO),
        ))),
    }
}

/// Opens (creating it if needed) the lock file in the directory `fd`, never following a
/// link, and checks that it is a plain private file of the daemon's.
fn open_lock(
    dir: &Path,
    fd: &OwnedFd,
    owner: Uid,
    owner_gid: Gid,
) -> Result<OwnedFd, SockDirError> {
    let path = dir.join(LOCK_FILE);
    let lock = openat(
        fd,
        LOCK_FILE,
        OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::S_IRUSR | Mode::S_IWUSR,
    )
    .map_err(sys("open lock file", &path))?;
    let stat = fstat(&lock).map_err(sys("inspect", &path))?;
    let regular = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG;
    let ours = stat.st_uid == Uid::effective().as_raw() || stat.st_uid == owner.as_raw();
    if !regular || stat.st_nlink != 1 || !ours || stat.st_mode & 0o077 != 0 {
        return Err(SockDirError::Unsafe {
            path,
            problem: format!(
                "is not the daemon's private lock file (uid {}, mode {:04o}, {} links): remove it",
                stat.st_uid,
                stat.st_mode & 0o7777,
                stat.st_nlink
            ),
        });
    }
    if stat.st_uid != owner.as_raw() {
        // Created just now by root: give it to the run user, like the directory, so that
        // a daemon started as that user (systemd's User=) can open it too.
        fchown(&lock, Some(owner), Some(owner_gid)).map_err(sys("chown lock file", &path))?;
    }
    Ok(lock)
}

fn open_dir(dir: &Path, owner: Uid, owner_gid: Gid) -> Result<(PathBuf, OwnedFd), SockDirError> {
    let unsafe_dir = |problem: String| SockDirError::Unsafe {
        path: dir.to_owned(),
        problem,
    };
    let (Some(parent_path), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(unsafe_dir(
            "does not end in a directory name: name one, e.g. /run/portbinder".into(),
        ));
    };
    // The parent is opened first and judged by its real path: what is checked is what the
    // directory is created or opened in, whatever symlinks led there.
    let parent = open(
        parent_path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open the directory above", dir))?;
    let real = trust::real_path(parent.as_fd())
        .map_err(|e| sys("inspect the directory above", dir)(io_errno(&e)))?;
    let trusted = |uid: u32| uid == 0 || uid == Uid::effective().as_raw() || uid == owner.as_raw();
    match trust::first_untrusted_dir(&real, &trusted) {
        Ok(None) => {}
        Ok(Some(found)) => {
            let fix = found.fix.trim_end_matches('`');
            return Err(unsafe_dir(format!(
                "the directory {} on its path is {}, so someone else could replace the socket directory: \
                 {fix}`, or choose another socket_dir",
                found.path.display(),
                found.problem
            )));
        }
        Err(e) => return Err(sys("inspect the directories above", dir)(io_errno(&e))),
    }
    let stat: FileStat = match fstatat(&parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOENT) => {
            // Private (0700, ours) until it has its owner and mode.
            mkdirat(&parent, name, Mode::S_IRWXU).map_err(sys("create directory", dir))?;
            let fd = openat(&parent, name, DIR_FLAGS, Mode::empty())
                .map_err(sys("open directory", dir))?;
            let stat = fstat(&fd).map_err(sys("inspect", dir))?;
            if !is_dir_owned_by(&stat, Uid::effective()) {
                return Err(unsafe_dir("was replaced while it was being created".into()));
            }
            if Uid::effective() != owner {
                fchown(&fd, Some(owner), Some(owner_gid)).map_err(sys("chown directory", dir))?;
            }
            fchmod(&fd, Mode::from_bits_truncate(DIR_MODE)).map_err(sys("chmod directory", dir))?;
            return Ok((dir.to_owned(), fd));
        }
        Err(errno) => return Err(sys("inspect", dir)(errno)),
        Ok(stat) => stat,
    };
    let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    if kind == SFlag::S_IFLNK {
        return Err(unsafe_dir(
            "is a symbolic link; portbinder never follows one here: remove it".into(),
        ));
    }
    if kind != SFlag::S_IFDIR {
        return Err(unsafe_dir(
            "exists and is not a directory: remove it or choose another socket_dir".into(),
        ));
    }
    if stat.st_uid != owner.as_raw() {
        return Err(unsafe_dir(format!(
            "is owned by uid {}, not by the run user (uid {owner}), which must own it to remove its sockets at exit: \
             remove it and portbinder creates it, or chown it",
            stat.st_uid
        )));
    }
    if stat.st_mode & 0o022 != 0 {
        return Err(unsafe_dir(format!(
            "has mode {:04o}: it must not be writable by group or others (chmod 0755 it)",
            stat.st_mode & 0o7777
        )));
    }
    let fd = openat(&parent, name, DIR_FLAGS, Mode::empty()).map_err(sys("open directory", dir))?;
    let opened = fstat(&fd).map_err(sys("inspect", dir))?;
    if (opened.st_dev, opened.st_ino) != (stat.st_dev, stat.st_ino) {
        return Err(unsafe_dir("was replaced while it was being checked".into()));
    }
    Ok((dir.to_owned(), fd))
}

/// The errno of an I/O error (EIO when it has none).
pub(super) fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}
