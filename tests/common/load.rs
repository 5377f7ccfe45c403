//! Load that runs through a restart of the daemon: requests sent back to back from a thread
//! (in the test's network namespace) until stopped, each answered or failed, with bounded
//! waits. HTTP/1.0 to the `serve-http` client, datagrams to the `udp-echo` client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use super::{LOG_TIMEOUT, wait_until};

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One HTTP/1.0 GET to `addr`: the uid in the reply of client.py's `serve-http`
/// (`hello from uid N`), or `None` if the request failed.
pub fn http_answered_by(addr: SocketAddr) -> Option<u32> {
    let mut stream = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT)).ok()?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    if !reply.starts_with("HTTP/1.0 200 OK") {
        return None;
    }
    reply.trim_end().rsplit(' ').next()?.parse().ok()
}

/// One datagram to `addr` through `socket` (connected to it): true when the same bytes came
/// back from client.py's `udp-echo`.
fn udp_echoed(socket: &UdpSocket, n: u64) -> bool {
    let sent = format!("request {n}");
    if socket.send(sent.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(socket.recv(&mut buf), Ok(len) if buf[..len] == *sent.as_bytes())
}

/// Requests back to back until [`Load::finish`].
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Load {
    /// HTTP requests to `addr` (e.g. `127.0.0.1:80`).
    pub fn http(addr: &str) -> Load {
        let addr: SocketAddr = addr.parse().unwrap();
        Load::start(move |_| http_answered_by(addr).is_some())
    }

    /// Datagrams to `addr` (e.g. `127.0.0.1:53`), one at a time, each waiting for its echo.
    pub fn udp(addr: &str) -> Load {
        let addr: SocketAddr = addr.parse().unwrap();
        let local = if addr.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        };
        let socket = UdpSocket::bind(local).unwrap();
        socket.connect(addr).unwrap();
        socket.set_read_timeout(Some(REQUEST_TIMEOUT)).unwrap();
        Load::start(move |n| udp_echoed(&socket, n))
    }

    fn start(request: impl Fn(u64) -> bool + Send + 'static) -> Load {
        let (stop, ok, failed) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let thread = {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let counter = if request(n) { &ok } else { &failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        Load {
            stop,
            ok,
            failed,
            thread: Some(thread),
        }
    }

    /// (answered, failed) so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Waits (bounded) until `more` further requests have been answered; panics otherwise.
    pub fn wait_for(&self, more: u64) {
        let from = self.counts().0;
        assert!(
            wait_until(LOG_TIMEOUT, || self.counts().0 >= from + more),
            "the load got {} answers, {} failures; expected {more} more answers",
            self.counts().0,
            self.counts().1
        );
    }

    /// Stops the load and returns (answered, failed).
    pub fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.counts()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
