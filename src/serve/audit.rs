//! Audit lines: one per event, `event=KIND key=value …`, with every value escaped so that
//! nothing a client controls (its process name) can forge a field or a line, even for a
//! parser that splits on whitespace and `=` and knows nothing of quotes.
//!
//! The grammar (README, "Audit log"): fields are separated by one space; a key is
//! `[a-z_]+`; a value made only of `[A-Za-z0-9._:/@,+%[]-]` is written bare, anything else
//! in double quotes with `"`, `\`, `=`, control bytes, DEL and non-ASCII bytes escaped as
//! `\xHH`. So no value holds a `=`, a newline or a control byte, and a newline in a process
//! name arrives as `\x0a` inside one line. Values a client chooses (its process name) have
//! their spaces escaped too (`\x20`): they are one whitespace-separated token. The daemon's
//! own texts (reasons, errors) keep their spaces, for people reading them.

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

    /// Appends `key=value` for a value the daemon wrote (a number, a name from the
    /// configuration, a reason), escaping it.
    pub fn field(mut self, key: &str, value: impl fmt::Display) -> Line {
        let text = value.to_string();
        self.push(key, text.as_bytes(), Spaces::Keep);
        self
    }

    /// Appends `key=value` for bytes a client chose (its process name, which need not be
    /// UTF-8): escaped as [`Line::field`] does, and its spaces as well, so that it stays one
    /// whitespace-separated token.
    pub fn bytes(mut self, key: &str, value: &[u8]) -> Line {
        self.push(key, value, Spaces::Escape);
        self
    }

    fn push(&mut self, key: &str, value: &[u8], spaces: Spaces) {
        self.0.push(' ');
        self.0.push_str(key);
        self.0.push('=');
        escape_into(&mut self.0, value, spaces);
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

/// Whether spaces inside a quoted value are kept or escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spaces {
    /// Kept as they are (the daemon's own texts).
    Keep,
    /// Written as `\x20` (values a client chose).
    Escape,
}

fn is_bare(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._:/@,+%[]-".contains(&b)
}

/// Writes `value` bare if it can be, else quoted and escaped (see the module's grammar).
pub fn escape_into(out: &mut String, value: &[u8], spaces: Spaces) {
    if !value.is_empty() && value.iter().all(|&b| is_bare(b)) {
        // Bare bytes are ASCII, so this is valid UTF-8.
        out.extend(value.iter().map(|&b| b as char));
        return;
    }
    out.push('"');
    for &b in value {
        let plain = match b {
            b' ' => spaces == Spaces::Keep,
            b'"' | b'\\' | b'=' => false,
            _ => b.is_ascii_graphic(),
        };
        if plain {
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
            r#"event=grant comm="evil\x0aevent\x3dx\x20\x22q\x5c\x1b\xff""#
        );
        assert!(!line.as_str().contains('\n'));
    }

    #[test]
    fn no_value_holds_an_equals_sign_and_peer_values_hold_no_space() {
        let line = Line::new("deny")
            .field("reason", "a=b c")
            .bytes("comm", b"x uid=33 user=w");
        assert_eq!(
            line.as_str(),
            r#"event=deny reason="a\x3db c" comm="x\x20uid\x3d33\x20user\x3dw""#
        );
        let keys: Vec<&str> = line
            .as_str()
            .split_whitespace()
            .filter_map(|t| t.split_once('=').map(|(k, _)| k))
            .collect();
        assert_eq!(keys, ["event", "reason", "comm"]);
    }
}
