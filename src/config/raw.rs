//! The configuration as written: the TOML file's tables and keys (or the same built from
//! command-line flags), parsed with unknown keys refused and not yet validated.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// The configuration file as written, before validation. Every field is optional here so
/// that command-line flags can fill or override it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    /// The user to run as after the privilege drop.
    pub user: Option<String>,
    /// The directory of the per-binding Unix sockets.
    pub socket_dir: Option<PathBuf>,
    /// Where log lines go.
    pub log: Option<LogTarget>,
    /// The syslog facility.
    pub facility: Option<Facility>,
    /// The bindings, by name.
    #[serde(default)]
    pub binding: BTreeMap<String, RawBinding>,
}

/// One `[binding.NAME]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBinding {
    /// Listen addresses, in the order they are granted.
    pub listen: Vec<String>,
    /// listen(2) backlog for TCP addresses.
    pub backlog: Option<u32>,
    /// The group of the Unix socket; its members may fetch the binding.
    pub group: String,
    /// The Unix socket's mode: an octal string ("0660") or a TOML integer (0o660).
    pub mode: Option<Mode>,
    /// Users allowed to fetch the binding.
    #[serde(default)]
    pub allow_users: Vec<String>,
    /// Groups allowed to fetch the binding.
    #[serde(default)]
    pub allow_groups: Vec<String>,
}

/// A file mode as written in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Mode {
    /// A TOML integer such as `0o660`.
    Int(i64),
    /// An octal string such as `"0660"`.
    Text(String),
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogTarget {
    /// glibc syslog(3) to /dev/log.
    Syslog,
    /// Standard error, one line per event.
    Stderr,
}

/// The syslog facilities an operator may choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Facility {
    Auth,
    Authpriv,
    Daemon,
    User,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}
