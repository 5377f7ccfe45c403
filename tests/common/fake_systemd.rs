//! A stand-in for systemd's side of sd_notify(3) ([`FakeSystemd`]): a datagram socket the test
//! binds and names in `NOTIFY_SOCKET`, reading what systemd would read (the text, the
//! SCM_RIGHTS descriptors and the kernel's SCM_CREDENTIALS of the sender).

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nix::cmsg_space;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use nix::sys::stat::fstat;

/// How long a notification may take to arrive; STATUS updates come every 5 s at most.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(15);

/// One notification as the service manager receives it.
#[derive(Debug)]
pub struct Message {
    /// The text, `KEY=VALUE` lines.
    pub text: String,
    /// The descriptors attached.
    pub fds: Vec<OwnedFd>,
    /// The sender's pid (SCM_CREDENTIALS).
    pub pid: i32,
    /// The sender's uid.
    pub uid: u32,
}

impl Message {
    /// The inode numbers of the attached descriptors.
    pub fn inodes(&self) -> Vec<u64> {
        self.fds.iter().map(inode).collect()
    }
}

/// The inode number of `fd`.
pub fn inode(fd: &OwnedFd) -> u64 {
    fstat(fd).unwrap().st_ino
}

/// The service manager's end: a datagram socket with SO_PASSCRED, as systemd's.
pub struct FakeSystemd {
    socket: UnixDatagram,
    /// The value for NOTIFY_SOCKET.
    pub address: String,
}

impl FakeSystemd {
    /// Binds `<dir>/notify`.
    pub fn at_path(dir: &Path) -> FakeSystemd {
        let path = dir.join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        FakeSystemd::new(socket, path.to_str().unwrap().to_owned())
    }

    /// Binds an abstract address (`@name` in NOTIFY_SOCKET), private to the test's netns.
    pub fn abstract_named(name: &str) -> FakeSystemd {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        FakeSystemd::new(socket, format!("@{name}"))
    }

    fn new(socket: UnixDatagram, address: String) -> FakeSystemd {
        setsockopt(&socket, sockopt::PassCred, &true).unwrap();
        socket.set_read_timeout(Some(NOTIFY_TIMEOUT)).unwrap();
        FakeSystemd { socket, address }
    }

    /// The next notification; panics after [`NOTIFY_TIMEOUT`].
    pub fn recv(&self) -> Message {
        let mut buf = vec![0u8; 4096];
        let mut space = cmsg_space!([RawFd; 253], nix::sys::socket::UnixCredentials);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            self.socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .unwrap_or_else(|e| panic!("no notification within {NOTIFY_TIMEOUT:?}: {e}"));
        let (mut fds, mut pid, mut uid) = (Vec::new(), 0, u32::MAX);
        for cmsg in msg.cmsgs().unwrap() {
            match cmsg {
                ControlMessageOwned::ScmRights(received) => {
                    // SAFETY: recvmsg just installed these descriptors in this process; nothing
                    // else knows their numbers, so each is owned exactly once.
                    fds.extend(
                        received
                            .iter()
                            .map(|&fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    );
                }
                ControlMessageOwned::ScmCredentials(creds) => {
                    pid = creds.pid();
                    uid = creds.uid();
                }
                other => panic!("unexpected control message {other:?}"),
            }
        }
        let len = msg.bytes;
        Message {
            text: String::from_utf8(buf[..len].to_vec()).unwrap(),
            fds,
            pid,
            uid,
        }
    }

    /// `daemon` (a `portbinder serve` command) set to notify this service manager.
    pub fn notifying(&self, mut daemon: Command) -> Command {
        daemon.env("NOTIFY_SOCKET", &self.address);
        daemon
    }

    /// The next notification, which must have exactly the text `expected`.
    pub fn expect(&self, expected: &str) -> Message {
        let message = self.recv();
        assert_eq!(message.text, expected, "{message:?}");
        message
    }
}
