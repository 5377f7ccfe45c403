//! The configuration: a TOML file (or the equivalent command-line flags), parsed with
//! unknown keys refused ([`raw`], [`file`](mod@file)), then validated and resolved (names to ids) in
//! one pass that reports every problem with the file, the binding and the field
//! ([`validate`], with the socket options in [`options`], into [`model`]). `serve` and `check` read it; nothing here needs a
//! privilege.

pub mod address;
pub mod error;
pub mod file;
pub mod ids;
pub mod model;
pub mod options;
pub mod raw;
pub mod trust;
mod validate;

pub use error::{ConfigError, Origin};
pub use file::{Trust, parse, read_file};
pub use model::{
    Binding, Config, DEFAULT_BACKLOG, DEFAULT_CONFIG, DEFAULT_MODE, DEFAULT_SOCKET_DIR,
    DEFAULT_USER, MAX_ADDRESSES, is_valid_name,
};
pub use options::SocketOptions;
pub use raw::{Facility, LogTarget, Mode, Raw, RawBinding, Size};
pub use validate::validate;
