//! Audit lines: one per event, `event=KIND key=value …`, with every value escaped so that
//! nothing a client controls (its process name) can forge a field or a line.
//!
//! A value made only of `[A-Za-z0-9._:/@,+%[]-]` is written bare. Anything else is written
//! in double quotes, with `"`, `\`, control bytes, non-ASCII bytes and DEL escaped as
//! `\xHH`, so a newline in a process name arrives as `\x0a` inside one line.

use std::fmt::{self, Write};

/// One audit line under construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line(String);

impl Line {
    /// Starts a line for `event` (a fixed word such as `grant`).
    pub fn new(event: &str) -> Line {
        let mut line = Line(String::with_capacity(160));
        line.0.push_str("event=");
        line.0.push_str(event);
        line
    }

    /// Appends `key=value`, escaping the value's text.
    pub fn field(mut self, key: &str, value: impl fmt::Display) -> Line {
        let text = value.to_string();
        self.push(key, text.as_bytes());
        self
    }

    /// Appends `key=value` for raw bytes (a process name need not be UTF-8).
    pub fn bytes(mut self, key: &str, value: &[u8]) -> Line {
        self.push(key, value);
        self
    }

    fn push(&mut self, key: &str, value: &[u8]) {
        self.0.push(' ');
        self.0.push_str(key);
        self.0.push('=');
        escape_into(&mut self.0, value);
    }

    /// The finished line.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_bare(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._:/@,+%[]-".contains(&b)
}

/// Writes `value` bare if it can be, else quoted and escaped.
pub fn escape_into(out: &mut String, value: &[u8]) {
    if !value.is_empty() && value.iter().all(|&b| is_bare(b)) {
        // Bare bytes are ASCII, so this is valid UTF-8.
        out.extend(value.iter().map(|&b| b as char));
        return;
    }
    out.push('"');
    for &b in value {
        if b == b' ' || (b.is_ascii_graphic() && b != b'"' && b != b'\\') {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_quoted_values() {
        let line = Line::new("grant")
            .field("binding", "http")
            .field("listen", "tcp://[::]:80,tcp://0.0.0.0:80")
            .field("reason", "not allowed here")
            .field("empty", "");
        assert_eq!(
            line.as_str(),
            r#"event=grant binding=http listen=tcp://[::]:80,tcp://0.0.0.0:80 reason="not allowed here" empty="""#
        );
    }

    #[test]
    fn client_controlled_bytes_cannot_forge_fields_or_lines() {
        let line = Line::new("grant").bytes("comm", b"evil\nevent=x \"q\\\x1b\xff");
        assert_eq!(
            line.as_str(),
            r#"event=grant comm="evil\x0aevent=x \x22q\x5c\x1b\xff""#
        );
        assert!(!line.as_str().contains('\n'));
    }
}
