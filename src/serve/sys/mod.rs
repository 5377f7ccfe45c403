//! The few system calls that neither std nor nix wrap, for the daemon. All of the daemon's
//! `unsafe` is in this folder (the caller's commands have theirs in exec/src/sys.rs, the shim
//! crate its own), each block with the invariant that makes it sound, one file per kind of
//! object acted on.

mod check;
mod glibc;
mod peers;
mod process;
mod sockets;

pub use glibc::{nss_files_only, openlog, syslog, tzset};
pub use peers::{pidfd_getfd, pidfd_open, same_fd_table};
pub(crate) use process::{adopt_fd, unset_env_single_threaded};
pub use process::{
    ambient_clear, bounding_drop, bounding_has, close_fds_from, monotonic_usec, securebits,
    set_securebits, try_lock_exclusive,
};
pub use sockets::{int_sockopt, peer_groups, set_int_sockopt, socket_cookie, unread_bytes};
