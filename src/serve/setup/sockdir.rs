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

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat, renameat};
use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, lstat, mkdirat, umask};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, mkdir, unlinkat};

use crate::config::Binding;

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

/// The socket directory, opened without following links.
#[derive(Debug)]
pub struct SocketDir {
    /// Its path, for messages and for the socket paths clients use.
    pub path: PathBuf,
    fd: OwnedFd,
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

fn is_dir_owned_by(stat: &FileStat, owner: Uid) -> bool {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
        && stat.st_uid == owner.as_raw()
}

/// Makes sure `dir` is a real directory owned by `owner` that nobody else can write to,
/// creating it (mode 0755, owned by `owner`) if it does not exist, opens it, and locks it
/// for the life of the daemon: a second daemon on the same directory would replace the
/// first one's sockets. A symlink is refused, never followed.
pub fn prepare_dir(dir: &Path, owner: Uid, owner_gid: Gid) -> Result<SocketDir, SockDirError> {
    let opened = open_dir(dir, owner, owner_gid)?;
    match crate::serve::sys::try_lock_exclusive(opened.fd.as_fd()) {
        Ok(true) => Ok(opened),
        Ok(false) => Err(SockDirError::Unsafe {
            path: dir.to_owned(),
            problem:
                "is in use by another portbinder: stop it, or give this one another socket_dir"
                    .into(),
        }),
        Err(e) => Err(sys("lock", dir)(Errno::from_raw(
            e.raw_os_error().unwrap_or(libc::EIO),
        ))),
    }
}

fn open_dir(dir: &Path, owner: Uid, owner_gid: Gid) -> Result<SocketDir, SockDirError> {
    let unsafe_dir = |problem: String| SockDirError::Unsafe {
        path: dir.to_owned(),
        problem,
    };
    let stat: FileStat = match lstat(dir) {
        Err(Errno::ENOENT) => {
            // Private (0700, ours) until it has its owner and mode.
            mkdir(dir, Mode::S_IRWXU).map_err(sys("create directory", dir))?;
            let fd = open(dir, DIR_FLAGS, Mode::empty()).map_err(sys("open directory", dir))?;
            let stat = fstat(&fd).map_err(sys("inspect", dir))?;
            if !is_dir_owned_by(&stat, Uid::effective()) {
                return Err(unsafe_dir("was replaced while it was being created".into()));
            }
            if Uid::effective() != owner {
                fchown(&fd, Some(owner), Some(owner_gid)).map_err(sys("chown directory", dir))?;
            }
            fchmod(&fd, Mode::from_bits_truncate(DIR_MODE)).map_err(sys("chmod directory", dir))?;
            return Ok(SocketDir {
                path: dir.to_owned(),
                fd,
            });
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
    let fd = open(dir, DIR_FLAGS, Mode::empty()).map_err(sys("open directory", dir))?;
    let opened = fstat(&fd).map_err(sys("inspect", dir))?;
    if (opened.st_dev, opened.st_ino) != (stat.st_dev, stat.st_ino) {
        return Err(unsafe_dir("was replaced while it was being checked".into()));
    }
    Ok(SocketDir {
        path: dir.to_owned(),
        fd,
    })
}

/// A binding's listening Unix socket and its file.
#[derive(Debug)]
pub struct Endpoint {
    /// `<dir>/<name>.sock`.
    pub path: PathBuf,
    /// The listening, non-blocking Unix socket.
    pub listener: OwnedFd,
}

/// The Unix sockets of all bindings. Dropping it removes their files, so no error path
/// and no clean stop leaves a socket file behind.
#[derive(Debug, Default)]
pub struct Endpoints(pub Vec<Endpoint>);

impl Drop for Endpoints {
    fn drop(&mut self) {
        for endpoint in &self.0 {
            let _ = std::fs::remove_file(&endpoint.path);
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
    result.map(|listener| Endpoint { path, listener })
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
