//! Why `portbinder serve` stopped, by the step that failed, and the exit code each cause
//! has (README, "Exit codes").

use nix::unistd::Uid;

use crate::config::ConfigError;
use crate::serve::notify::NotifyError;
use crate::serve::sandbox::SandboxError;
use crate::serve::setup::bind::BindError;
use crate::serve::setup::listenfds::ListenFdsError;
use crate::serve::setup::privdrop::{DropError, VerifyError};
use crate::serve::setup::sockdir::SockDirError;

/// Why `serve` stopped before serving (or while serving).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Start-up set-up failed.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The privilege drop failed.
    #[error(transparent)]
    Drop(#[from] DropError),
    /// The privilege drop could not be verified.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The seccomp filter or the Landlock ruleset could not be installed.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// epoll or the signalfd failed while serving.
    #[error("serve loop failed: {0}")]
    Serve(std::io::Error),
}

/// A start-up step before the drop failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// LISTEN_FDS could not be taken over.
    #[error("cannot take inherited sockets: {0}")]
    ListenFds(#[from] ListenFdsError),
    /// A socket could not be bound or adopted.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The socket directory or a Unix socket failed.
    #[error(transparent)]
    SockDir(#[from] SockDirError),
    /// `$NOTIFY_SOCKET` is set but cannot be connected to.
    #[error(transparent)]
    Notify(#[from] NotifyError),
    /// Signals or the umask could not be set up.
    #[error("cannot {0}: {1}")]
    Process(&'static str, std::io::Error),
    /// Started without root and as another user than the configured one.
    #[error(
        "started as uid {current} without root, but the configuration's user is `{name}` (uid {wanted}): \
         start as root, or as that user with CAP_NET_BIND_SERVICE and CAP_CHOWN"
    )]
    WrongUser {
        /// The uid we run as.
        current: Uid,
        /// The configured user's name.
        name: String,
        /// Its uid.
        wanted: Uid,
    },
}

impl ServeError {
    /// The documented exit code (README, "Exit codes").
    pub fn exit_code(&self) -> i32 {
        match self {
            ServeError::Config(_) => 3,
            ServeError::Setup(_) => 4,
            ServeError::Drop(_) | ServeError::Verify(_) | ServeError::Sandbox(_) => 5,
            ServeError::Serve(_) => 1,
        }
    }
}
