//! portbinder: a privilege-separating port binder for Linux.
//!
//! `portbinder serve` starts with the privilege to bind ports below 1024, binds every
//! configured socket, creates one Unix socket per binding, drops every privilege and
//! verifies the drop, then hands the bound sockets to the processes the configuration
//! allows (identified by the kernel with `SO_PEERCRED`) with `SCM_RIGHTS`. See
//! docs/PRIVSEP.md for who holds which privilege when, and docs/PROTOCOL.md for the wire
//! protocol.
//!
//! The modules follow the privilege boundary:
//!
//! * [`serve`]: the daemon, and nothing else. [`serve::setup`] runs with the start-up
//!   privileges (binding, the socket directory, the fd store, the drop itself);
//!   [`serve::sandbox`] is installed right after the verified drop; [`serve::grant`] is the
//!   serve loop, which runs with no privilege at all.
//! * [`caller`]: the commands that run as the user who types them (`exec`, from the
//!   portbinder-exec crate in exec/, and `list`).
//! * [`config`] and [`cli`]: what both sides read (the configuration file and the command
//!   line; `check` is the configuration's validation, run as the caller).

pub mod caller;
pub mod cli;
pub mod config;
pub mod serve;
