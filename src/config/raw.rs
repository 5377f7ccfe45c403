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
    /// O_NONBLOCK on the binding's sockets (src/config/options.rs has every option's meaning).
    pub nonblocking: Option<bool>,
    /// IPV6_V6ONLY on its IPv6 sockets.
    pub ipv6_only: Option<bool>,
    /// IP_FREEBIND / IPV6_FREEBIND.
    pub free_bind: Option<bool>,
    /// SO_BINDTODEVICE: an interface name.
    pub bind_to_device: Option<String>,
    /// SO_REUSEADDR.
    pub reuse_address: Option<bool>,
    /// TCP_DEFER_ACCEPT, seconds.
    pub defer_accept: Option<i64>,
    /// TCP_FASTOPEN queue length.
    pub fast_open: Option<i64>,
    /// SO_KEEPALIVE.
    pub keepalive: Option<bool>,
    /// TCP_KEEPIDLE, seconds.
    pub keepalive_idle: Option<i64>,
    /// TCP_KEEPINTVL, seconds.
    pub keepalive_interval: Option<i64>,
    /// TCP_KEEPCNT.
    pub keepalive_count: Option<i64>,
    /// SO_RCVBUF / SO_RCVBUFFORCE, bytes.
    pub receive_buffer: Option<Size>,
    /// SO_SNDBUF / SO_SNDBUFFORCE, bytes.
    pub send_buffer: Option<Size>,
    /// SO_MARK.
    pub mark: Option<i64>,
}

/// A size in bytes as written: a TOML integer, or a string with a K, M or G suffix.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Size {
    /// A TOML integer: bytes.
    Int(i64),
    /// A string such as `"8M"` (base 1024).
    Text(String),
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
