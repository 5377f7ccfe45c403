//! `portbinder exec`: fetch bindings from the daemon and exec a program with them, using
//! systemd's socket-activation protocol (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`), or,
//! with `--preload`, for a program that just calls bind(2), through the LD_PRELOAD shim.
//!
//! Both `portbinder exec` and the static `portbinder-exec` run this code.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use portbinder_client as client;

use portbinder_client::LISTEN_FDS_START as FIRST_FD;

use crate::sys;

/// The variable through which `--preload` tells the shim which descriptors it may use.
pub const PRELOAD_FDS_VAR: &str = "PORTBINDER_FDS";
/// The variable naming each descriptor's binding for the shim (as `LISTEN_FDNAMES`), which
/// it names in its warnings.
pub const PRELOAD_NAMES_VAR: &str = "PORTBINDER_FDNAMES";
/// The variable that makes the shim serve a bind of any address with a wildcard socket.
pub const PRELOAD_ANY_ADDRESS_VAR: &str = "PORTBINDER_PRELOAD_ANY_ADDRESS";
/// The shim's file name.
pub const PRELOAD_LIB: &str = "libportbinder_preload.so";
/// Where packages install the shim.
pub const PRELOAD_DIRS: [&str; 2] = ["/usr/lib/portbinder", "/usr/local/lib/portbinder"];

/// What to fetch and what to run.
#[derive(Debug)]
pub struct Request {
    /// Binding names, in the order their sockets are placed.
    pub names: Vec<String>,
    /// The daemon's socket directory.
    pub socket_dir: PathBuf,
    /// `Some(shim)` to hand the sockets to the LD_PRELOAD shim instead of LISTEN_FDS.
    pub preload: Option<PathBuf>,
    /// With `preload`: serve a bind of any address with a granted wildcard socket of the
    /// same port (`--preload-any-address`).
    pub any_address: bool,
    /// The program and its arguments.
    pub command: Vec<OsString>,
}

/// Why `exec` did not exec. Each variant has its own exit code (README, "Exit codes").
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A binding could not be fetched.
    #[error("binding `{name}`: {error}")]
    Fetch {
        /// The binding.
        name: String,
        /// Why.
        error: client::Error,
    },
    /// A name is not a binding name.
    #[error("`{0}` is not a binding name: names are 1 to 64 characters of a-z, 0-9, `_` and `-`")]
    BadName(String),
    /// An inherited descriptor sits where a socket must go.
    #[error(
        "fd {0} is already open (inherited from the parent), but the sockets go to fds {FIRST_FD} and up: \
         close it in the parent"
    )]
    FdBusy(RawFd),
    /// The shim library is missing.
    #[error("the LD_PRELOAD library {} is missing: install it or name it with --preload-lib", .0.display())]
    NoShim(PathBuf),
    /// Moving a descriptor into place failed.
    #[error("cannot place the sockets at fds {FIRST_FD} and up: {0}")]
    Place(io::Error),
    /// execvp failed.
    #[error("cannot execute `{}`: {error}", program.to_string_lossy())]
    Exec {
        /// The program.
        program: OsString,
        /// Why.
        error: io::Error,
    },
}

impl ExecError {
    /// The documented exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            ExecError::Fetch {
                error: client::Error::Denied { .. },
                ..
            } => 6,
            ExecError::Fetch {
                error: client::Error::NotFound { .. } | client::Error::Io { .. },
                ..
            } => 7,
            ExecError::Fetch { .. } => 8,
            ExecError::BadName(_) => 2,
            ExecError::FdBusy(_) | ExecError::NoShim(_) | ExecError::Place(_) => 9,
            ExecError::Exec { error, .. } if error.kind() == io::ErrorKind::NotFound => 127,
            ExecError::Exec { .. } => 126,
        }
    }
}

/// Fetches every binding, places the sockets at fds 3, 4, … and execs the program. Returns
/// only on failure, having closed every descriptor it opened.
///
/// # Safety
///
/// The process must have one thread: the sockets are moved onto descriptor numbers that
/// were checked to be free, which another thread could take in between.
pub unsafe fn exec(request: &Request) -> ExecError {
    match prepare(request) {
        Ok(mut command) => {
            let error = command.exec();
            ExecError::Exec {
                program: request.command[0].clone(),
                error,
            }
        }
        Err(e) => e,
    }
}

fn prepare(request: &Request) -> Result<Command, ExecError> {
    for name in &request.names {
        if !client::is_valid_name(name) {
            return Err(ExecError::BadName(name.clone()));
        }
    }
    if let Some(shim) = &request.preload {
        if !shim.is_file() {
            return Err(ExecError::NoShim(shim.clone()));
        }
    }
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut names = Vec::new();
    for name in &request.names {
        let path = client::socket_path_in(&request.socket_dir, name);
        let got = client::fetch_from(&path).map_err(|error| ExecError::Fetch {
            name: name.clone(),
            error,
        })?;
        names.extend(std::iter::repeat_n(name.as_str(), got.len()));
        fds.extend(got);
    }
    let count = fds.len() as RawFd;
    // The connections to the daemon are closed: the received sockets are the only
    // descriptors this process opened, so any other open one where they go was inherited.
    // (One probe per target, not one per possible descriptor.)
    let received: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let busy = (FIRST_FD..FIRST_FD + count).find(|fd| !received.contains(fd) && sys::is_open(*fd));
    if let Some(busy) = busy {
        return Err(ExecError::FdBusy(busy));
    }
    // The received fds sit at arbitrary numbers, maybe among the targets: move them all
    // above the target range first, then into place, so none overwrites another.
    let high: Vec<OwnedFd> = fds
        .iter()
        .map(|fd| sys::dup_at_least(fd, FIRST_FD + count))
        .collect::<Result<_, _>>()
        .map_err(ExecError::Place)?;
    drop(fds);
    for (fd, target) in high.into_iter().zip(FIRST_FD..) {
        sys::place_for_exec(fd, target).map_err(ExecError::Place)?;
    }

    let mut command = Command::new(&request.command[0]);
    command
        .args(&request.command[1..])
        .env_remove("LISTEN_PIDFDID");
    let numbers: Vec<String> = (FIRST_FD..FIRST_FD + count)
        .map(|fd| fd.to_string())
        .collect();
    match &request.preload {
        None => {
            // exec keeps the pid, so LISTEN_PID names the program.
            command
                .env("LISTEN_FDS", count.to_string())
                .env("LISTEN_PID", std::process::id().to_string())
                .env("LISTEN_FDNAMES", names.join(":"));
        }
        Some(shim) => {
            let mut preload = OsString::from(shim);
            if let Some(old) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
                preload.push(":");
                preload.push(old);
            }
            command
                .env("LD_PRELOAD", preload)
                .env(PRELOAD_FDS_VAR, numbers.join(","))
                .env(PRELOAD_NAMES_VAR, names.join(":"))
                .env_remove("LISTEN_FDS")
                .env_remove("LISTEN_PID")
                .env_remove("LISTEN_FDNAMES");
            if request.any_address {
                command.env(PRELOAD_ANY_ADDRESS_VAR, "1");
            }
        }
    }
    Ok(command)
}

/// Finds the shim: next to this executable (a build tree), then where packages put it.
pub fn find_shim() -> PathBuf {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(PRELOAD_LIB)));
    beside
        .into_iter()
        .chain(PRELOAD_DIRS.iter().map(|d| Path::new(d).join(PRELOAD_LIB)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| Path::new(PRELOAD_DIRS[0]).join(PRELOAD_LIB))
}
