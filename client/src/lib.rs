//! Fetch listening sockets from a [portbinder] daemon.
//!
//! portbinder binds privileged ports (80, 443, 53…) as root, drops every privilege and
//! hands the bound sockets to the processes its configuration allows. This crate is the
//! client side of its protocol (docs/PROTOCOL.md): connect to `<socket_dir>/<name>.sock`,
//! send nothing, receive the binding's sockets. It depends on `nix` and `thiserror` only,
//! so an application pulls in nothing of the daemon.
//!
//! ```no_run
//! // In a server that may not bind port 80 itself:
//! let listener = portbinder_client::tcp_listener("http")?;
//! for stream in listener.incoming() {
//!     // …
//! #   break;
//! }
//! # Ok::<(), portbinder_client::Error>(())
//! ```
//!
//! [portbinder]: https://example.invalid/portbinder

#[doc(hidden)]
pub mod doc_support;
pub mod protocol;
mod sys;

use std::io;
use std::net::{TcpListener, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::socket::{SockType, getsockopt, sockopt};

use protocol::{Answer, ReceiveError};

pub use protocol::ProtocolError;

/// The daemon's default socket directory.
pub const DEFAULT_SOCKET_DIR: &str = "/run/portbinder";

/// The first descriptor of systemd's socket-passing protocol (`SD_LISTEN_FDS_START`):
/// `portbinder exec` puts the sockets at 3, 4, … and announces them in `LISTEN_FDS`.
pub const LISTEN_FDS_START: std::os::fd::RawFd = 3;

/// How long to wait for the daemon's answer once connected.
pub const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a binding could not be fetched. Match on it to tell the cases apart.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The binding's socket file does not exist: no such binding, or the daemon is not
    /// running (it removes its socket files when it stops).
    #[error("no binding at {}: check the name with `portbinder list`, and that portbinder is running", path.display())]
    NotFound {
        /// The socket path tried.
        path: PathBuf,
    },
    /// The access was refused: by the daemon (with its reason), or by the socket file's
    /// permissions before the daemon was even asked.
    #[error("access to {} denied: {reason}", path.display())]
    Denied {
        /// The socket path.
        path: PathBuf,
        /// The daemon's reason, or the file-permission explanation.
        reason: String,
    },
    /// The daemon's answer broke the protocol.
    #[error("protocol error from {}: {error}", path.display())]
    Protocol {
        /// The socket path.
        path: PathBuf,
        /// What was wrong.
        error: ProtocolError,
    },
    /// Any other I/O error (for example ECONNREFUSED: a stale socket file left by a daemon
    /// that was killed).
    #[error("cannot fetch from {}: {error}{}", path.display(), io_hint(error))]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        error: io::Error,
    },
    /// The granted socket is not of the type the caller asked for.
    #[error("{} granted {found}, not {wanted}", path.display())]
    WrongType {
        /// The socket path.
        path: PathBuf,
        /// What was expected.
        wanted: &'static str,
        /// What was received.
        found: String,
    },
}

fn io_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => " (the socket file is stale: is portbinder running?)",
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            " (no answer in time: is portbinder stopped or overloaded?)"
        }
        _ => "",
    }
}

/// The socket path of binding `name` in the default directory.
///
/// ```
/// assert_eq!(portbinder_client::socket_path("http"), std::path::Path::new("/run/portbinder/http.sock"));
/// ```
pub fn socket_path(name: &str) -> PathBuf {
    socket_path_in(Path::new(DEFAULT_SOCKET_DIR), name)
}

/// The socket path of binding `name` in the socket directory `dir`: `<dir>/<name>.sock`,
/// the one naming rule shared by the daemon and its clients.
///
/// ```
/// use std::path::Path;
/// assert_eq!(portbinder_client::socket_path_in(Path::new("/tmp/pb"), "dns"), Path::new("/tmp/pb/dns.sock"));
/// ```
pub fn socket_path_in(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.sock"))
}

/// Whether `name` is a binding name: 1 to 64 characters of `a-z`, `0-9`, `_` and `-`. The
/// daemon refuses any other name in its configuration, and clients check it before building
/// a path, so a name can never climb out of the socket directory.
///
/// ```
/// assert!(portbinder_client::is_valid_name("http-2"));
/// assert!(!portbinder_client::is_valid_name("../etc"));
/// assert!(!portbinder_client::is_valid_name(""));
/// ```
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Fetches the sockets of binding `name` from the daemon's default socket directory.
/// See [`fetch_from`].
///
/// ```no_run
/// for fd in portbinder_client::fetch("http")? {
///     // one socket per address of the binding, in configuration order
/// }
/// # Ok::<(), portbinder_client::Error>(())
/// ```
pub fn fetch(name: &str) -> Result<Vec<OwnedFd>, Error> {
    fetch_from(&socket_path(name))
}

/// Fetches the sockets behind the Unix socket `path`, in the binding's configuration order.
/// They are close-on-exec and owned by the caller.
///
/// ```
/// # let bound = std::net::TcpListener::bind("127.0.0.1:0")?;
/// # let (dir, path, daemon) = portbinder_client::doc_support::stand_in(vec![bound.into()]);
/// let fds = portbinder_client::fetch_from(&path)?;
/// assert_eq!(fds.len(), 1);
/// let listener = std::net::TcpListener::from(fds.into_iter().next().unwrap());
/// println!("listening on {}", listener.local_addr()?);
/// # daemon.join().unwrap();
/// # drop(dir);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn fetch_from(path: &Path) -> Result<Vec<OwnedFd>, Error> {
    let conn = UnixStream::connect(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => Error::NotFound { path: path.to_owned() },
        io::ErrorKind::PermissionDenied => Error::Denied {
            path: path.to_owned(),
            reason: "the socket file's permissions do not let you connect (are you in its group? see `portbinder list`)".to_owned(),
        },
        _ => Error::Io { path: path.to_owned(), error: source },
    })?;
    // The daemon answers at once; a hung daemon must not hang the caller forever.
    conn.set_read_timeout(Some(ANSWER_TIMEOUT))
        .map_err(|error| Error::Io {
            path: path.to_owned(),
            error,
        })?;
    match protocol::receive(conn.as_fd()) {
        Ok(Answer::Granted(fds)) => Ok(fds),
        Ok(Answer::Denied(reason)) => Err(Error::Denied {
            path: path.to_owned(),
            reason,
        }),
        Err(ReceiveError::Protocol(error)) => Err(Error::Protocol {
            path: path.to_owned(),
            error,
        }),
        Err(ReceiveError::Io(error)) => Err(Error::Io {
            path: path.to_owned(),
            error,
        }),
    }
}

/// Fetches binding `name` from the default directory and returns its first socket as a TCP
/// listener. See [`tcp_listener_from`].
///
/// ```no_run
/// let listener = portbinder_client::tcp_listener("http")?;
/// let (stream, peer) = listener.accept()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn tcp_listener(name: &str) -> Result<TcpListener, Error> {
    tcp_listener_from(&socket_path(name))
}

/// Fetches the binding behind `path` and returns its first socket as a TCP listener; a
/// binding whose first socket is not TCP is [`Error::WrongType`].
///
/// ```
/// # let bound = std::net::TcpListener::bind("127.0.0.1:0")?;
/// # let (dir, path, daemon) = portbinder_client::doc_support::stand_in(vec![bound.into()]);
/// let listener = portbinder_client::tcp_listener_from(&path)?;
/// let addr = listener.local_addr()?;
/// std::net::TcpStream::connect(addr)?;
/// let (_stream, _peer) = listener.accept()?;
/// # daemon.join().unwrap();
/// # drop(dir);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn tcp_listener_from(path: &Path) -> Result<TcpListener, Error> {
    first_of(path, SockType::Stream, "a TCP listening socket").map(TcpListener::from)
}

/// Fetches binding `name` from the default directory and returns its first socket as a
/// bound UDP socket. See [`udp_socket_from`].
///
/// ```no_run
/// let socket = portbinder_client::udp_socket("dns")?;
/// let mut buf = [0u8; 512];
/// let (len, peer) = socket.recv_from(&mut buf)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn udp_socket(name: &str) -> Result<UdpSocket, Error> {
    udp_socket_from(&socket_path(name))
}

/// Fetches the binding behind `path` and returns its first socket as a bound UDP socket.
///
/// ```
/// # let bound = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// # let (dir, path, daemon) = portbinder_client::doc_support::stand_in(vec![bound.into()]);
/// let socket = portbinder_client::udp_socket_from(&path)?;
/// let sender = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// sender.send_to(b"ping", socket.local_addr()?)?;
/// let mut buf = [0u8; 8];
/// let (len, _) = socket.recv_from(&mut buf)?;
/// assert_eq!(&buf[..len], b"ping");
/// # daemon.join().unwrap();
/// # drop(dir);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn udp_socket_from(path: &Path) -> Result<UdpSocket, Error> {
    first_of(path, SockType::Datagram, "a UDP socket").map(UdpSocket::from)
}

fn first_of(path: &Path, kind: SockType, wanted: &'static str) -> Result<OwnedFd, Error> {
    let fd = fetch_from(path)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Protocol {
            path: path.to_owned(),
            error: ProtocolError::Empty,
        })?;
    match getsockopt(&fd.as_fd(), sockopt::SockType) {
        Ok(found) if found == kind => Ok(fd),
        found => Err(Error::WrongType {
            path: path.to_owned(),
            wanted,
            found: format!("{found:?}"),
        }),
    }
}
