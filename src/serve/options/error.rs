//! Why an option could not be given to a socket, and the small helpers every option's code
//! shares to say so.

use std::fmt;
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::sys::socket::{SetSockOpt, setsockopt};

/// Where a socket was made, which decides what can still change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// Made here and not bound yet: everything can be set.
    Here,
    /// Inherited and bound (and, for TCP, listening).
    Inherited,
}

/// An option that could not be given to a socket.
#[derive(Debug)]
pub struct OptionError {
    /// The configuration key.
    pub field: &'static str,
    /// The value it asks for (`None`: not set, so the default).
    pub value: Option<String>,
    /// What went wrong (the missing privilege, the socket's own value…).
    pub problem: String,
    /// What the operator can do.
    pub fix: String,
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "`{} = {value}`", self.field)?,
            None => write!(f, "`{}` (not set)", self.field)?,
        }
        write!(f, ": {}\n  fix: {}", self.problem, self.fix)
    }
}

impl std::error::Error for OptionError {}

/// How to get CAP_NET_ADMIN, for the messages.
pub(super) const NET_ADMIN_FIX: &str = "start portbinder as root (it gives the capability up before it \
    serves), or under systemd add CAP_NET_ADMIN to both AmbientCapabilities= and \
    CapabilityBoundingSet= (`systemctl edit portbinder`)";

pub(super) fn flag(on: bool) -> String {
    on.to_string()
}

/// setsockopt through nix, with a generic error.
pub(super) fn set<O: SetSockOpt>(
    fd: &OwnedFd,
    field: &'static str,
    option: O,
    value: &O::Val,
    shown: String,
) -> Result<(), OptionError> {
    setsockopt(fd, option, value).map_err(|errno| failed(field, shown, errno))
}

/// A failure the kernel explains by its errno alone.
pub(super) fn failed(field: &'static str, value: String, errno: Errno) -> OptionError {
    OptionError {
        field,
        value: Some(value),
        problem: format!("the kernel refused it: {errno}"),
        fix: "remove the option, or check that this kernel supports it".to_owned(),
    }
}
