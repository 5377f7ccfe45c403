//! The daemon's audit lines ([`Event`]) and their grammar: `event=KIND key=value...`, bare
//! values from a small alphabet, quoted values printable ASCII with `\xHH` escapes. The tests
//! parse leniently and check the format separately, so that a malformed line is reported, not
//! misread.

/// One syslog line of the daemon: `facility.severity portbinder[PID]: event=KIND key=value...`.
#[derive(Clone, Debug)]
pub struct Event {
    /// The whole line as rsyslogd wrote it.
    pub line: String,
    /// Syslog facility name (`authpriv`, `local3`...).
    pub facility: String,
    /// Syslog severity name (`notice`, `warning`...).
    pub severity: String,
    /// The message body after the tag.
    pub body: String,
    /// `key=value` pairs in order; quoted values keep their escapes, without the quotes.
    pub fields: Vec<(String, String)>,
}

impl Event {
    /// Parses a line; malformed field syntax is kept as it comes (see [`Event::format_errors`]).
    pub fn parse(line: &str) -> Event {
        let (prio, rest) = line.split_once(' ').unwrap_or((line, ""));
        let (facility, severity) = prio.split_once('.').unwrap_or((prio, ""));
        let body = rest.split_once("]: ").map_or(rest, |(_, b)| b);
        Event {
            line: line.to_owned(),
            facility: facility.to_owned(),
            severity: severity.to_owned(),
            body: body.to_owned(),
            fields: split_fields(body),
        }
    }

    /// The value of `event=`.
    pub fn kind(&self) -> &str {
        self.get("event").unwrap_or("")
    }

    /// The value of the first field named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, parsed as a number (panics if absent or not a number).
    pub fn number(&self, key: &str) -> u64 {
        self.get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no numeric {key}= in {:?}", self.line))
    }

    /// Asserts that the fields `expected` are present with these values and in this order;
    /// other fields may come between them (the spec's lines are the minimum).
    pub fn assert_fields(&self, expected: &[(&str, &str)]) {
        let mut fields = self.fields.iter();
        for (key, value) in expected {
            let found = fields.by_ref().find(|(k, _)| k == key);
            assert_eq!(
                found.map(|(_, v)| v.as_str()),
                Some(*value),
                "field {key} (in this order: {expected:?}) of {:?}",
                self.line
            );
        }
    }

    /// Where the body breaks the audit format: it must start with `event=`, every field is
    /// `key=value`, bare values use only `[A-Za-z0-9._:/@,+%\[\]-]`, and quoted values hold
    /// only printable ASCII other than `"`, `\` and `=`, except `\xHH` escapes.
    pub fn format_errors(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if !self.body.starts_with("event=") {
            errors.push("does not start with event=".to_owned());
        }
        let mut rest = self.body.as_str();
        while !rest.is_empty() {
            let Some((key, after)) = rest.split_once('=') else {
                errors.push(format!("no `=` in {rest:?}"));
                break;
            };
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                errors.push(format!("bad key {key:?}"));
            }
            let (value_ok, after) = if let Some(quoted) = after.strip_prefix('"') {
                match quoted.find('"') {
                    Some(end) => (quoted_ok(&quoted[..end]), &quoted[end + 1..]),
                    None => (false, ""),
                }
            } else {
                let end = after.find(' ').unwrap_or(after.len());
                (bare_ok(&after[..end]), &after[end..])
            };
            if !value_ok {
                errors.push(format!("bad value for {key}"));
            }
            rest = match after.strip_prefix(' ') {
                Some(r) => r,
                None if after.is_empty() => after,
                None => {
                    errors.push(format!("no space after {key}"));
                    break;
                }
            };
        }
        errors
    }
}

/// A bare value: non-empty, only `[A-Za-z0-9._:/@,+%\[\]-]`.
fn bare_ok(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/@,+%[]-".contains(&b))
}

/// The inside of a quoted value: printable ASCII without `"`, `\` or `=`, plus `\xHH`
/// escapes (README, "Audit log": no value holds a `=`).
fn quoted_ok(value: &str) -> bool {
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                let hex = bytes.get(i + 1..i + 4);
                if !matches!(hex, Some([b'x', h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit())
                {
                    return false;
                }
                i += 4;
            }
            b' '..=b'~' if bytes[i] != b'"' && bytes[i] != b'=' => i += 1,
            _ => return false,
        }
    }
    true
}

/// Splits `k=v k="quoted v" ...` into pairs (lenient: used on any line).
fn split_fields(body: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut rest = body.trim_start();
    while let Some((key, after)) = rest.split_once('=') {
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').unwrap_or(quoted.len());
                (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
            }
            None => after.split_once(' ').unwrap_or((after, "")),
        };
        fields.push((key.to_owned(), value.to_owned()));
        rest = after.trim_start();
    }
    fields
}
