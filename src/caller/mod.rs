//! The commands that run as the caller, with the caller's own credentials and nothing
//! more: `portbinder exec` (fetch bindings, exec a program with them) and `portbinder list`.
//! Nothing here runs in the daemon.
//!
//! `exec.rs`, `sys.rs` and `args.rs` are also the whole of `portbinder-exec`, the static
//! client for containers (exec/src/main.rs includes them by path), so they use std, libc,
//! thiserror, portbinder-client and each other (`super::`) only, never `crate::`.

pub mod args;
pub mod exec;
pub mod list;
mod sys;
