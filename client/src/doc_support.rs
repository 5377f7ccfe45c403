//! A stand-in daemon for this crate's runnable documentation examples (not API).

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::thread::JoinHandle;

/// Serves one grant of `fds`, exactly as portbinder sends it, on a fresh socket path.
/// Returns a guard that removes the directory on drop, the path, and the thread.
pub fn stand_in(fds: Vec<OwnedFd>) -> (TempDir, PathBuf, JoinHandle<()>) {
    let dir = std::env::temp_dir().join(format!(
        "portbinder-doc-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    let path = dir.join("http.sock");
    let server = UnixListener::bind(&path).expect("bind the stand-in socket");
    let thread = std::thread::spawn(move || {
        let (conn, _) = server.accept().expect("accept");
        let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&raw)];
        let count = [raw.len() as u8];
        nix::sys::socket::sendmsg::<()>(
            conn.as_raw_fd(),
            &[IoSlice::new(&count)],
            &cmsg,
            nix::sys::socket::MsgFlags::empty(),
            None,
        )
        .expect("send the grant");
    });
    (TempDir(dir.clone()), path, thread)
}

/// Removes its directory when dropped.
pub struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
