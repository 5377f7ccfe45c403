//! Step 4 of start-up: the socket directory and one Unix socket per binding.
//!
//! Each socket is bound under a temporary name, given its owner, group and mode, put in
//! listening state and only then renamed to `<dir>/<name>.sock`, so there is no moment
//! in which a client can reach it with the wrong permissions. (fchown/fchmod on a socket
//! descriptor change the socket inode, not the file, so the temporary path is changed
//! instead; it lives in a directory only the daemon can write to.)

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AT_FDCWD;
use nix::fcntl::AtFlags;
use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, SFlag, fchmodat, lstat};
use nix::unistd::{Gid, Uid, chown, fchownat, mkdir};

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

/// Makes sure `dir` is a real directory owned by `owner` that nobody else can write to,
/// creating it (mode 0755, owned by `owner`) if it does not exist. A symlink is refused,
/// never followed.
pub fn prepare_dir(dir: &Path, owner: Uid, owner_gid: Gid) -> Result<(), SockDirError> {
    let unsafe_dir = |problem: String| SockDirError::Unsafe {
        path: dir.to_owned(),
        problem,
    };
    let stat: FileStat = match lstat(dir) {
        Err(Errno::ENOENT) => {
            mkdir(dir, Mode::from_bits_truncate(DIR_MODE)).map_err(sys("create directory", dir))?;
            if Uid::effective() != owner {
                chown(dir, Some(owner), Some(owner_gid)).map_err(sys("chown directory", dir))?;
            }
            fchmodat(
                AT_FDCWD,
                dir,
                Mode::from_bits_truncate(DIR_MODE),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(sys("chmod directory", dir))?;
            return Ok(());
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
    Ok(())
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
pub fn create(dir: &Path, binding: &Binding, owner: Uid) -> Result<Endpoint, SockDirError> {
    let path = binding.socket_path(dir);
    let tmp = dir.join(format!(".{}.sock.{}.tmp", binding.name, std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(sys("create a Unix socket for", &path))?;
    let result = (|| {
        let addr = UnixAddr::new(&tmp).map_err(sys("address", &tmp))?;
        // The process umask (0077, set at start-up) makes the new file 0600 at most.
        socket::bind(listener.as_raw_fd(), &addr).map_err(sys("bind Unix socket", &tmp))?;
        fchownat(
            AT_FDCWD,
            &tmp,
            Some(owner),
            Some(binding.group.gid),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(sys("chown", &tmp))?;
        fchmodat(
            AT_FDCWD,
            &tmp,
            Mode::from_bits_truncate(binding.mode),
            FchmodatFlags::FollowSymlink,
        )
        .map_err(sys("chmod", &tmp))?;
        socket::listen(&listener, Backlog::MAXCONN).map_err(sys("listen on", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(|e| SockDirError::Sys {
            op: "rename into place",
            path: path.clone(),
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })
    })();
    match result {
        Ok(()) => Ok(Endpoint { path, listener }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The owner, group and permission bits of a socket file, for the start line.
pub fn describe(path: &Path) -> io::Result<(u32, u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    Ok((meta.uid(), meta.gid(), meta.mode() & 0o7777))
}
