//! Why a configuration cannot be used, and where it came from (for the messages).

use std::fmt;
use std::path::PathBuf;

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
