//! The consumer side of systemd's socket-passing protocol (`sd_listen_fds(3)`):
//! `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`, with the descriptors at 3, 4, …

use std::os::fd::{OwnedFd, RawFd};

use crate::serve::sys;

/// The first passed descriptor (`SD_LISTEN_FDS_START`).
pub const FIRST_FD: RawFd = portbinder_client::LISTEN_FDS_START;

/// One inherited descriptor and the name it was passed under.
#[derive(Debug)]
pub struct Inherited {
    /// Its number when it was inherited (for messages).
    pub number: RawFd,
    /// Its name from `LISTEN_FDNAMES` (`unknown` when no name was given, as in systemd).
    pub name: String,
    /// The descriptor, now owned.
    pub fd: OwnedFd,
}

/// The environment announced descriptors that are not there or cannot be parsed.
#[derive(Debug, thiserror::Error)]
pub enum ListenFdsError {
    /// `LISTEN_FDS` is not a number.
    #[error("LISTEN_FDS=`{0}` is not a number of descriptors")]
    Count(String),
    /// `LISTEN_FDNAMES` names a different number of descriptors.
    #[error("LISTEN_FDNAMES has {names} names for LISTEN_FDS={count} descriptors")]
    Names {
        /// Names given.
        names: usize,
        /// Descriptors announced.
        count: usize,
    },
    /// An announced descriptor is not open.
    #[error("LISTEN_FDS announces fd {fd}, which is not open")]
    Closed {
        /// The descriptor number.
        fd: RawFd,
        /// fcntl's error.
        source: std::io::Error,
    },
}

/// How many descriptors the environment passes to this process: 0 unless `LISTEN_PID`
/// is our pid (the variables may be stale ones meant for a parent).
pub fn count() -> Result<usize, ListenFdsError> {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    match std::env::var("LISTEN_FDS") {
        Ok(text) if ours => text.parse().map_err(|_| ListenFdsError::Count(text)),
        _ => Ok(0),
    }
}

/// Takes ownership of the passed descriptors and removes the variables from the
/// environment, so nothing started later inherits them. Call once, at start-up, before
/// anything else opens a descriptor.
pub(crate) fn take() -> Result<Vec<Inherited>, ListenFdsError> {
    let count = count()?;
    let names: Vec<String> = match std::env::var("LISTEN_FDNAMES") {
        Ok(text) if count > 0 => text.split(':').map(str::to_owned).collect(),
        _ => vec!["unknown".to_owned(); count],
    };
    for var in [
        "LISTEN_PID",
        "LISTEN_FDS",
        "LISTEN_FDNAMES",
        "LISTEN_PIDFDID",
    ] {
        sys::unset_env_single_threaded(var);
    }
    if names.len() != count {
        return Err(ListenFdsError::Names {
            names: names.len(),
            count,
        });
    }
    names
        .into_iter()
        .zip(FIRST_FD..)
        .map(|(name, number)| {
            let fd = sys::adopt_fd(number)
                .map_err(|source| ListenFdsError::Closed { fd: number, source })?;
            Ok(Inherited { number, name, fd })
        })
        .collect()
}
