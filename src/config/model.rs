//! The validated configuration, with every name resolved to an id: what the daemon acts on.

use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};

use super::address::ListenAddr;
use super::error::Origin;
use super::ids::{GroupId, IdRange, UserId};
use super::options::SocketOptions;
use super::raw::{Facility, LogTarget};

/// Where the daemon reads its configuration when no `--config` is given.
pub const DEFAULT_CONFIG: &str = "/etc/portbinder/portbinder.toml";
/// The default directory of the per-binding Unix sockets.
pub const DEFAULT_SOCKET_DIR: &str = "/run/portbinder";
/// The default user the daemon drops to.
pub const DEFAULT_USER: &str = "portbinder";
/// The default mode of a binding's Unix socket.
pub const DEFAULT_MODE: u32 = 0o660;
/// The default listen(2) backlog of TCP bindings.
pub const DEFAULT_BACKLOG: u32 = 1024;
/// The most addresses one binding may hold: the kernel passes at most 253 descriptors in
/// one SCM_RIGHTS message (`SCM_MAX_FD`), and a grant is one message.
pub const MAX_ADDRESSES: usize = 253;

/// A validated configuration with every name resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from.
    pub origin: Origin,
    /// The user to run as after the drop.
    pub user: UserId,
    /// The primary group of that user.
    pub user_gid: Gid,
    /// The directory of the Unix sockets.
    pub socket_dir: PathBuf,
    /// Where log lines go.
    pub log: LogTarget,
    /// The syslog facility.
    pub facility: Facility,
    /// The bindings, sorted by name.
    pub bindings: Vec<Binding>,
}

/// A validated binding.
#[derive(Debug, Clone)]
pub struct Binding {
    /// `[a-z0-9_-]{1,64}`: the socket file's stem and the name in logs.
    pub name: String,
    /// The addresses, in grant order.
    pub listen: Vec<ListenAddr>,
    /// listen(2) backlog for TCP addresses.
    pub backlog: u32,
    /// The Unix socket's group (implicitly allowed).
    pub group: GroupId,
    /// The Unix socket's permission bits.
    pub mode: u32,
    /// Users allowed to fetch: single uids and ranges of them.
    pub allow_users: Vec<IdRange<Uid>>,
    /// Groups allowed to fetch, the socket's group first: single gids and ranges of them.
    pub allow_groups: Vec<IdRange<Gid>>,
    /// How its sockets are made (O_NONBLOCK, IPV6_V6ONLY, buffers, …).
    pub options: SocketOptions,
}

/// Whether `name` is a valid binding name: 1 to 64 characters of `a-z`, `0-9`, `_`, `-`
/// (the rule lives in the client crate, which the static `portbinder-exec` shares).
pub use portbinder_client::is_valid_name;

impl Binding {
    /// The path of this binding's Unix socket in `dir`.
    pub fn socket_path(&self, dir: &Path) -> PathBuf {
        portbinder_client::socket_path_in(dir, &self.name)
    }
}
