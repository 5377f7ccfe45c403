//! The caller's side of portbinder: what runs with the credentials of whoever asks for a
//! binding, and nothing more. [`exec`] fetches bindings from the daemon and execs a program
//! with them (systemd's `LISTEN_FDS`, or the LD_PRELOAD shim); it is `portbinder exec`, and
//! also the whole of `portbinder-exec`, the small static executable for containers (this
//! crate's binary, with [`args`] as its hand-written command line). All of its `unsafe` is
//! in `sys`.
//!
//! It depends on std, libc, thiserror and portbinder-client only, so the static build needs
//! no NSS and no dlopen.

pub mod args;
pub mod exec;
mod sys;
