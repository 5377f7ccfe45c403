//! The commands that run as the caller, with the caller's own credentials and nothing
//! more: `portbinder exec` (fetch bindings, exec a program with them) and `portbinder list`.
//! Nothing here runs in the daemon.

pub mod exec;
pub mod list;
mod sys;
