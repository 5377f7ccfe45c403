//! The start-up steps that need the start-up privileges (root, or CAP_NET_BIND_SERVICE and
//! CAP_CHOWN from the service manager), in the order `serve::run` takes them:
//! take the inherited sockets ([`listenfds`]), open and lock the socket directory
//! ([`sockdir`]), bind or adopt every address ([`bind`], on [`socket`]), where an address is
//! in use recovering the socket that processes still hold from a daemon that died with no
//! service manager to keep it ([`recover`], with [`sockdiag`] or [`procnet`], [`holders`],
//! [`pinned`] and the [`record`] of the sockets portbinder bound, which a start as root
//! then writes anew), create one Unix socket per binding ([`endpoint`]), and finally drop
//! every privilege and read the drop back ([`privdrop`]). (systemd's fd store is brought in
//! line in between, by src/serve/fdstore.rs, which a reload uses too.)

pub mod bind;
pub mod endpoint;
pub mod holders;
pub mod listenfds;
pub mod pinned;
pub mod privdrop;
pub mod procnet;
pub mod record;
pub mod recover;
pub mod sockdiag;
pub mod sockdir;
pub mod socket;
