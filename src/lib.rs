//! portbinder: a privilege-separating port binder for Linux.
//!
//! `portbinder serve` starts with the privilege to bind ports below 1024, binds every
//! configured socket, creates one Unix socket per binding, drops every privilege and
//! verifies the drop, then hands the bound sockets to the processes the configuration
//! allows (identified by the kernel with `SO_PEERCRED`) with `SCM_RIGHTS`. See
//! docs/PRIVSEP.md for who holds which privilege when, and docs/PROTOCOL.md for the wire
//! protocol.

pub mod access;
pub mod address;
pub mod audit;
pub mod bind;
pub mod cli;
pub mod config;
pub mod exec;
pub mod fdstore;
pub mod grant;
pub mod ids;
pub mod list;
pub mod listenfds;
pub mod logger;
pub mod notify;
pub mod peer;
pub mod privdrop;
pub mod protocol;
pub mod ratelimit;
pub mod sandbox;
pub mod serve;
pub mod sockdir;
pub mod socket;
mod sys;
