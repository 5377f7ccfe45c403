//! Step 4 of start-up, second half: one Unix socket per binding, in the checked socket
//! directory (src/serve/setup/sockdir.rs).
//!
//! Each socket is bound inside a fresh private staging directory (mode 0700, owned by the
//! daemon's effective uid), created with its final mode by the umask (no chmod), chowned
//! with AT_SYMLINK_NOFOLLOW, put in listening state, and only then renamed into place as
//! `<dir>/<name>.sock`, so no client can reach it with the wrong permissions and no
//! swapped-in link can redirect a privileged chown or chmod. Every step goes through the
//! directory's descriptor, never its path. The serve loop owns them from then on; a reload
//! may remove one (src/serve/reload/).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, openat, renameat};
use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use nix::sys::stat::{Mode, SFlag, fstat, fstatat, mkdirat, umask};
use nix::unistd::{Uid, UnlinkatFlags, unlinkat};

use super::sockdir::{DIR_FLAGS, SockDirError, SocketDir, is_dir_owned_by, sys};
use crate::config::Binding;

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

impl Endpoint {
    /// `<name>.sock`, the file's name in the socket directory.
    pub fn file(&self) -> &str {
        &self.file
    }
}

/// The Unix sockets of all bindings, in the socket directory they were made in, by binding
/// index (a binding a reload removed keeps its index, without an endpoint). Dropping it
/// removes their files through the directory's descriptor (never by path: the directory may
/// have been moved or replaced meanwhile), so no error path and no clean stop leaves a
/// socket file behind.
#[derive(Debug)]
pub struct Endpoints<'a> {
    dir: &'a SocketDir,
    list: Vec<Option<Endpoint>>,
}

impl<'a> Endpoints<'a> {
    /// No endpoints yet, in `dir`.
    pub fn new(dir: &'a SocketDir) -> Endpoints<'a> {
        Endpoints {
            dir,
            list: Vec::new(),
        }
    }

    /// Creates the endpoint of `binding` (see [`create`]) and keeps it, under the next index.
    pub fn create(&mut self, binding: &Binding, owner: Uid) -> Result<(), SockDirError> {
        self.list.push(Some(create(self.dir, binding, owner)?));
        Ok(())
    }

    /// The endpoint of binding `index`, unless a reload removed it.
    pub fn get(&self, index: usize) -> Option<&Endpoint> {
        self.list.get(index).and_then(Option::as_ref)
    }

    /// The socket directory's descriptor, checked at start-up.
    pub fn dir(&self) -> BorrowedFd<'_> {
        self.dir.fd()
    }

    /// Removes the endpoint of binding `index`: its file first, through the directory's
    /// descriptor (a file already gone is no error), so that a client connecting meanwhile
    /// finds no file rather than a closed socket, then its Unix socket, which closing also
    /// takes out of the serve loop's epoll set. The endpoint is gone even when the unlink
    /// fails (the error is returned, to be logged).
    pub fn remove(&mut self, index: usize) -> Result<(), Errno> {
        let Some(endpoint) = self.list.get_mut(index).and_then(Option::take) else {
            return Ok(());
        };
        let removed = unlink(self.dir, &endpoint.file);
        drop(endpoint);
        removed
    }
}

/// Removes `file` from `dir`; a file already gone is no error.
fn unlink(dir: &SocketDir, file: &str) -> Result<(), Errno> {
    match unlinkat(dir.fd(), file, UnlinkatFlags::NoRemoveDir) {
        Err(Errno::ENOENT) => Ok(()),
        other => other,
    }
}

impl Drop for Endpoints<'_> {
    fn drop(&mut self) {
        for endpoint in self.list.iter().flatten() {
            let _ = unlink(self.dir, &endpoint.file);
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
    let made = match mkdirat(dir.fd(), stage_name.as_str(), Mode::S_IRWXU) {
        // Left by a daemon of the same pid that died in this very step (pid 1 in a
        // container with a lasting socket_dir): removed if it is a private one of ours.
        Err(Errno::EEXIST) if remove_stale_stage(dir, &stage_name, &file) => {
            mkdirat(dir.fd(), stage_name.as_str(), Mode::S_IRWXU)
        }
        other => other,
    };
    made.map_err(sys("create staging directory", &stage_path))?;
    let result = (|| {
        let stage = openat(dir.fd(), stage_name.as_str(), DIR_FLAGS, Mode::empty())
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
        renameat(&stage, file.as_str(), dir.fd(), file.as_str())
            .map_err(sys("rename into place", &path))?;
        Ok(listener)
    })();
    // The staging directory is empty now (or holds a socket we failed to move): remove both.
    if let Ok(stage) = openat(dir.fd(), stage_name.as_str(), DIR_FLAGS, Mode::empty()) {
        let _ = unlinkat(&stage, file.as_str(), UnlinkatFlags::NoRemoveDir);
    }
    let _ = unlinkat(dir.fd(), stage_name.as_str(), UnlinkatFlags::RemoveDir);
    result.map(|listener| Endpoint {
        path,
        file,
        listener,
    })
}

/// Removes the staging directory `name` (and the socket `file` in it) that a daemon of this
/// pid left behind, if it is a private directory of this process's uid; false otherwise.
fn remove_stale_stage(dir: &SocketDir, name: &str, file: &str) -> bool {
    let Ok(stage) = openat(dir.fd(), name, DIR_FLAGS, Mode::empty()) else {
        return false;
    };
    match fstat(&stage) {
        Ok(stat) if is_dir_owned_by(&stat, Uid::effective()) && stat.st_mode & 0o077 == 0 => {}
        _ => return false,
    }
    let _ = unlinkat(&stage, file, UnlinkatFlags::NoRemoveDir);
    unlinkat(dir.fd(), name, UnlinkatFlags::RemoveDir).is_ok()
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
