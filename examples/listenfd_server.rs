//! A tiny HTTP server that takes its listening socket from systemd's socket-activation
//! protocol with the `listenfd` crate, so `portbinder exec http -- listenfd_server` serves
//! port 80 as an unprivileged user with no portbinder-specific code.
//!
//! It answers every request with one line naming its uid and the address it serves, and
//! exits after `$SERVE_REQUESTS` requests (default: never).

use std::io::{BufRead, BufReader, Write};

fn main() -> std::io::Result<()> {
    let mut fds = listenfd::ListenFd::from_env();
    let listener = fds
        .take_tcp_listener(0)?
        .expect("no socket passed at fd 3: run me under `portbinder exec NAME -- ...`");
    let limit: Option<usize> = std::env::var("SERVE_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok());
    let addr = listener.local_addr()?;
    println!("serving on {addr}");
    for (served, stream) in listener.incoming().enumerate() {
        let mut stream = stream?;
        let mut request_line = String::new();
        BufReader::new(&stream).read_line(&mut request_line)?;
        let uid = std::fs::read_to_string("/proc/self/status")?
            .lines()
            .find_map(|l| {
                l.strip_prefix("Uid:")
                    .map(|v| v.split_whitespace().next().unwrap_or("?").to_owned())
            })
            .unwrap_or_default();
        write!(
            stream,
            "HTTP/1.0 200 OK\r\n\r\nlistenfd server on {addr}, uid {uid}\n"
        )?;
        if limit.is_some_and(|l| served + 1 >= l) {
            break;
        }
    }
    Ok(())
}
