//! The configuration: a TOML file (or the equivalent command-line flags), parsed with
//! unknown keys refused, then validated and resolved (names to ids) in one pass that
//! reports every problem with the file, the binding and the field.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};
use serde::Deserialize;

use crate::address::ListenAddr;
use crate::ids::{GroupId, UserId};

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
/// The most addresses one binding may hold: the grant's count byte is 1..=255.
pub const MAX_ADDRESSES: usize = 255;

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

/// Where a configuration came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A configuration file.
    File(PathBuf),
    /// `--bind` and friends.
    Flags,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Flags => f.write_str("command line"),
        }
    }
}

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
    /// Users allowed to fetch.
    pub allow_users: Vec<Uid>,
    /// Groups allowed to fetch, the socket's group first.
    pub allow_groups: Vec<Gid>,
}

/// Whether `name` is a valid binding name: 1 to 64 characters of `a-z`, `0-9`, `_`, `-`.
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Binding {
    /// The path of this binding's Unix socket in `dir`.
    pub fn socket_path(&self, dir: &Path) -> PathBuf {
        portbinder_client::socket_path_in(dir, &self.name)
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has an unknown key or a value of the wrong type.
    #[error("invalid configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message, with line, column and the offending text.
        message: String,
    },
    /// `serve` refuses a file that someone other than root (or the user it runs as) could
    /// have written: whoever can change it decides who gets privileged ports.
    #[error(
        "refusing configuration file {}: {problem}, and whoever can change it decides who \
         gets privileged ports: {fix}",
        path.display()
    )]
    Untrusted {
        /// The file as named.
        path: PathBuf,
        /// Who could change it, and how.
        problem: String,
        /// The command (or step) that makes it trustworthy.
        fix: String,
    },
    /// One or more values are wrong; each problem names its binding and field.
    #[error("invalid configuration ({origin}):\n  {}", problems.join("\n  "))]
    Invalid {
        /// Where the configuration came from.
        origin: Origin,
        /// One sentence per problem.
        problems: Vec<String>,
    },
}

/// Which configuration files [`read_file`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Any readable file: `check` validates drafts wherever they lie.
    Any,
    /// Only a file that no one but root or the user this process runs as could have
    /// changed: not one they own or that their group or others may write, nor one in a
    /// directory they could write to (a sticky directory such as /tmp excepted), as sshd
    /// and sudo do. `serve` reads with this.
    RootOnly,
}

/// Reads and parses a configuration file (no validation yet).
pub fn read_file(path: &Path, trust: Trust) -> Result<Raw, ConfigError> {
    let read = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let trusted_only = trust == Trust::RootOnly;
    let mut file = File::options()
        .read(true)
        // Never block on a FIFO put where the file should be; it is refused below.
        .custom_flags(if trusted_only { libc::O_NONBLOCK } else { 0 })
        .open(path)
        .map_err(read)?;
    if trusted_only {
        if let Some((problem, fix)) = untrusted(&file).map_err(read)? {
            return Err(ConfigError::Untrusted {
                path: path.to_owned(),
                problem,
                fix,
            });
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read)?;
    parse(&text, path)
}

/// What makes the open configuration `file` untrustworthy, and the fix, if anything: its
/// type, owner or mode, or the owner or mode of a directory on its real path (read from
/// /proc/self/fd, so the file checked is the file read, whatever symlinks led to it).
fn untrusted(file: &File) -> std::io::Result<Option<(String, String)>> {
    let me = Uid::effective().as_raw();
    let trusted = |uid: u32| uid == 0 || uid == me;
    let owner = |uid: u32| {
        crate::ids::user_name(Uid::from_raw(uid))
            .map_or(format!("uid {uid}"), |name| format!("uid {uid} ({name})"))
    };
    let writable = |mode: u32| {
        format!(
            "writable by its group or by others (mode {:04o})",
            mode & 0o7777
        )
    };
    let meta = file.metadata()?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    let shown = real.display();
    if !meta.is_file() {
        let fix = "point --config at the file itself".to_owned();
        return Ok(Some(("it is not a regular file".to_owned(), fix)));
    }
    if !trusted(meta.uid()) {
        let problem = format!("it is owned by {}", owner(meta.uid()));
        return Ok(Some((problem, format!("`chown root: {shown}`"))));
    }
    if meta.mode() & 0o022 != 0 {
        let problem = format!("it is {}", writable(meta.mode()));
        return Ok(Some((problem, format!("`chmod go-w {shown}`"))));
    }
    for dir in real.ancestors().skip(1) {
        let meta = std::fs::symlink_metadata(dir)?;
        let sticky = meta.mode() & 0o1000 != 0;
        let (what, fix) = if !trusted(meta.uid()) {
            (format!("owned by {}", owner(meta.uid())), "`chown root:")
        } else if meta.mode() & 0o022 != 0 && !sticky {
            (writable(meta.mode()), "`chmod go-w")
        } else {
            continue;
        };
        let dir = dir.display();
        return Ok(Some((
            format!("the directory {dir} on its path is {what}, so the file could be replaced"),
            format!("{fix} {dir}`, or move the file"),
        )));
    }
    Ok(None)
}

/// Parses configuration text read from `path` (no validation yet).
pub fn parse(text: &str, path: &Path) -> Result<Raw, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let table = e
            .span()
            .and_then(|span| enclosing_binding(text, span.start));
        let message = e.to_string().trim_end().to_owned();
        ConfigError::Parse {
            path: path.to_owned(),
            message: match table {
                Some(name) => format!("binding `{name}`: {message}"),
                None => message,
            },
        }
    })
}

/// The name of the `[binding.NAME]` table that contains byte `offset` of `text`, so a
/// parse error (an unknown key, a wrong type) names its binding too.
fn enclosing_binding(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset)?;
    let header = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))?;
    let name = header.strip_prefix("[binding.")?.strip_suffix(']')?;
    Some(name.trim().trim_matches('"').to_owned())
}

mod validate;
pub use validate::validate;
