//! The shim's only output: one line on stderr when a bind of a granted address cannot be
//! served the way the program asked. Formatted on the stack (bind(2) is async-signal-safe,
//! so the shim's must not allocate), and not written at all when fd 2 is an IPv4 or IPv6
//! socket, which a daemon that reused the number would otherwise receive as data.

use std::fmt::{self, Write};
use std::net::SocketAddr;

use crate::sys;

/// Why a bind was not served as asked.
#[derive(Clone, Copy, Debug)]
pub enum Warning {
    /// The shared socket's O_NONBLOCK (`shared_nonblocking`) differs from the program's
    /// socket's; the shared one is kept.
    Mode {
        /// Whether the shared socket is non-blocking.
        shared_nonblocking: bool,
    },
    /// The granted socket is no longer where the shim kept it (closed or replaced by a
    /// system call the shim does not see): the real bind(2) is used.
    Lost,
}

/// A line buffer on the stack; what does not fit is cut off.
struct Line {
    bytes: [u8; 512],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.bytes.len() - 1 - self.len; // keep one byte for the newline
        let n = s.len().min(room);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn mode(nonblocking: bool) -> &'static str {
    if nonblocking {
        "non-blocking"
    } else {
        "blocking"
    }
}

fn format(line: &mut Line, warning: Warning, addr: &SocketAddr, binding: &str) -> fmt::Result {
    write!(line, "portbinder-preload: bind {addr}")?;
    if !binding.is_empty() {
        write!(line, " (binding {binding})")?;
    }
    match warning {
        Warning::Mode { shared_nonblocking } => write!(
            line,
            ": the shared socket is {shared} and this program asked for {asked}; it stays \
             {shared}, since the mode is shared by every holder: set `nonblocking = {setting}` \
             in the binding's configuration",
            shared = mode(shared_nonblocking),
            asked = mode(!shared_nonblocking),
            setting = !shared_nonblocking,
        ),
        Warning::Lost => write!(
            line,
            ": the granted socket was closed or replaced behind the shim's back (a raw \
             close_range or dup2 system call?): using the real bind()"
        ),
    }
}

/// Prints `warning` about a bind of `addr` (of binding `binding`, empty if unknown).
pub fn print(warning: Warning, addr: &SocketAddr, binding: &str) {
    let mut line = Line {
        bytes: [0; 512],
        len: 0,
    };
    let _ = format(&mut line, warning, addr, binding);
    line.bytes[line.len] = b'\n';
    let domain = sys::socket_option(2, libc::SO_DOMAIN);
    if !matches!(domain, Some(libc::AF_INET | libc::AF_INET6)) {
        sys::write_stderr(&line.bytes[..=line.len]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(warning: Warning, binding: &str) -> String {
        let mut line = Line {
            bytes: [0; 512],
            len: 0,
        };
        format(&mut line, warning, &"[::]:443".parse().unwrap(), binding).unwrap();
        String::from_utf8(line.bytes[..line.len].to_vec()).unwrap()
    }

    #[test]
    fn lines_name_the_address_the_binding_and_the_fix() {
        assert_eq!(
            text(
                Warning::Mode {
                    shared_nonblocking: false
                },
                "https"
            ),
            "portbinder-preload: bind [::]:443 (binding https): the shared socket is blocking \
             and this program asked for non-blocking; it stays blocking, since the mode is \
             shared by every holder: set `nonblocking = true` in the binding's configuration"
        );
        assert!(
            text(
                Warning::Mode {
                    shared_nonblocking: true
                },
                ""
            )
            .starts_with(
                "portbinder-preload: bind [::]:443: the shared socket is non-blocking and this \
                 program asked for blocking; it stays non-blocking"
            )
        );
        assert!(text(Warning::Lost, "https").ends_with(": using the real bind()"));
    }

    #[test]
    fn a_long_line_is_cut_not_overflowed() {
        let long = "x".repeat(600);
        let mode = Warning::Mode {
            shared_nonblocking: true,
        };
        assert_eq!(text(mode, &long).len(), 511);
    }
}
