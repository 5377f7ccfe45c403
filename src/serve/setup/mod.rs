//! The start-up steps that need the start-up privileges (root, or CAP_NET_BIND_SERVICE and
//! CAP_CHOWN from the service manager), in the order `serve::run` takes them:
//! take the inherited sockets ([`listenfds`]), bind or adopt every address ([`bind`], on
//! [`socket`]), where an address is in use recovering the socket that processes still hold
//! from a daemon that died with no service manager to keep it ([`recover`], with
//! [`sockdiag`] or [`procnet`], [`holders`] and [`pinned`]), create the socket directory and
//! one Unix socket per binding ([`sockdir`], [`endpoint`]), and finally drop every privilege
//! and read the drop back ([`privdrop`]). (systemd's fd store is brought in line in between,
//! by src/serve/fdstore.rs, which a reload uses too.)

pub mod bind;
pub mod endpoint;
pub mod holders;
pub mod listenfds;
pub mod pinned;
pub mod privdrop;
pub mod procnet;
pub mod recover;
pub mod sockdiag;
pub mod sockdir;
pub mod socket;
