//! Step 4 of start-up: the socket directory and one Unix socket per binding.
//!
//! The socket directory belongs to the run user, who can rename, replace or symlink
//! anything in it at any moment. So nothing here follows a path in it: the directory is
//! opened once (O_NOFOLLOW) and every later step works on descriptors. Each socket is
//! bound inside a fresh private staging directory (mode 0700, owned by the daemon's
//! effective uid), created with its final mode by the umask (no chmod), chowned with
//! AT_SYMLINK_NOFOLLOW, put in listening state, and only then renamed into place as
//! `<dir>/<name>.sock`, so no client can reach it with the wrong permissions and no
//! swapped-in link can redirect a privileged chown or chmod.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat, renameat};
use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat, umask};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, unlinkat};

use crate::config::{Binding, trust};

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

fn sys<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> SockDirError + 'a {
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

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

fn is_dir_owned_by(stat: &FileStat, owner: Uid) -> bool {
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

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// A binding's listening Unix socket and its file.
#[derive(Debug)]
pub struct Endpoint {
    /// `<dir>/<name>.sock`.
    pub path: PathBuf,
    /// `<name>.sock`, the file's name in the socket directory.
    file: String,
    /// The listening, non-blocking Unix socket.
    pub listener: OwnedFd,
}

/// The Unix sockets of all bindings, in the socket directory they were made in. Dropping
/// it removes their files through the directory's descriptor (never by path: the directory
/// may have been moved or replaced meanwhile), so no error path and no clean stop leaves a
/// socket file behind.
#[derive(Debug)]
pub struct Endpoints<'a> {
    dir: &'a SocketDir,
    /// The endpoints, in binding order.
    pub list: Vec<Endpoint>,
}

impl<'a> Endpoints<'a> {
    /// No endpoints yet, in `dir`.
    pub fn new(dir: &'a SocketDir) -> Endpoints<'a> {
        Endpoints {
            dir,
            list: Vec::new(),
        }
    }

    /// Creates the endpoint of `binding` (see [`create`]) and keeps it.
    pub fn create(&mut self, binding: &Binding, owner: Uid) -> Result<(), SockDirError> {
        self.list.push(create(self.dir, binding, owner)?);
        Ok(())
    }
}

impl Drop for Endpoints<'_> {
    fn drop(&mut self) {
        for endpoint in &self.list {
            let _ = unlinkat(
                &self.dir.fd,
                endpoint.file.as_str(),
                UnlinkatFlags::NoRemoveDir,
            );
        }
    }
}

/// Creates `<dir>/<name>.sock` for `binding`, owned by `owner` and the binding's group,
/// with the binding's mode, already listening when it appears under its final name.
pub fn create(dir: &SocketDir, binding: &Binding, owner: Uid) -> Result<Endpoint, SockDirError> {
    let path = binding.socket_path(&dir.path);
    let stage_name = format!(".{}.{}.new", binding.name, std::process::id());
    let stage_path = dir.path.join(&stage_name);
    let file = format!("{}.sock", binding.name);
    mkdirat(&dir.fd, stage_name.as_str(), Mode::S_IRWXU)
        .map_err(sys("create staging directory", &stage_path))?;
    let result = (|| {
        let stage = openat(&dir.fd, stage_name.as_str(), DIR_FLAGS, Mode::empty())
            .map_err(sys("open staging directory", &stage_path))?;
        let stat = fstat(&stage).map_err(sys("inspect", &stage_path))?;
        if !is_dir_owned_by(&stat, Uid::effective()) || stat.st_mode & 0o077 != 0 {
            return Err(SockDirError::Unsafe {
                path: stage_path.clone(),
                problem: "was replaced while it was being created".into(),
            });
        }
        let listener =
            bind_in(&stage, &file, binding.mode).map_err(sys("bind Unix socket for", &path))?;
        let created = fstatat(&stage, file.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(sys("inspect", &path))?;
        if SFlag::from_bits_truncate(created.st_mode) & SFlag::S_IFMT != SFlag::S_IFSOCK {
            return Err(SockDirError::Unsafe {
                path: stage_path.clone(),
                problem: "holds something other than our socket".into(),
            });
        }
        nix::unistd::fchownat(
            &stage,
            file.as_str(),
            Some(owner),
            Some(binding.group.gid),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(sys("chown (needs root or CAP_CHOWN)", &path))?;
        socket::listen(&listener, Backlog::MAXCONN).map_err(sys("listen on", &path))?;
        // The atomic step that makes it reachable; it replaces a stale file of the same
        // name (never following it) and fails on a directory.
        renameat(&stage, file.as_str(), &dir.fd, file.as_str())
            .map_err(sys("rename into place", &path))?;
        Ok(listener)
    })();
    // The staging directory is empty now (or holds a socket we failed to move): remove both.
    if let Ok(stage) = openat(&dir.fd, stage_name.as_str(), DIR_FLAGS, Mode::empty()) {
        let _ = unlinkat(&stage, file.as_str(), UnlinkatFlags::NoRemoveDir);
    }
    let _ = unlinkat(&dir.fd, stage_name.as_str(), UnlinkatFlags::RemoveDir);
    result.map(|listener| Endpoint {
        path,
        file,
        listener,
    })
}

/// Binds a new non-blocking Unix socket at `name` in the directory `stage`, with the
/// file's permission bits set by the umask at creation (restored to 077 after).
fn bind_in(stage: &OwnedFd, name: &str, mode: u32) -> Result<OwnedFd, Errno> {
    let listener = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    // The path goes through our descriptor of the staging directory, not its name.
    let addr =
        UnixAddr::new(format!("/proc/self/fd/{}/{name}", stage.as_fd().as_raw_fd()).as_str())?;
    umask(Mode::from_bits_truncate(!mode & 0o777));
    let bound = socket::bind(listener.as_raw_fd(), &addr);
    umask(Mode::from_bits_truncate(0o077));
    bound.map(|()| listener)
}
