//! The commands that run as the caller, with the caller's own credentials and nothing
//! more: `portbinder exec` (fetch bindings, exec a program with them: the portbinder-exec
//! crate, exec/, shared with the static client) and `portbinder list`. Nothing here runs in
//! the daemon.

pub use portbinder_exec::{args, exec};

pub mod list;
