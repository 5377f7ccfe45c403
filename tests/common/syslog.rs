//! The syslog file that `scripts/test`'s rsyslogd writes: where it is and what was written to
//! it since an offset, whoever sent it.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// The file rsyslogd writes every message to (set by `scripts/test`).
pub fn syslog_path() -> PathBuf {
    std::env::var_os("PORTBINDER_TEST_SYSLOG")
        .map(PathBuf::from)
        .expect("PORTBINDER_TEST_SYSLOG is not set: run the suite with `bash scripts/test`")
}

/// The size of the syslog file now: lines after this offset were written later.
pub fn syslog_offset() -> u64 {
    fs::metadata(syslog_path())
        .expect("syslog file (is rsyslogd running?)")
        .len()
}

/// The complete lines of the syslog file from byte `offset` on, from any sender.
pub fn syslog_lines_since(offset: u64) -> Vec<String> {
    let mut file = fs::File::open(syslog_path()).expect("open syslog file");
    file.seek(SeekFrom::Start(offset)).unwrap();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).unwrap();
    // A line that rsyslogd is still writing has no newline yet: leave it for the next read.
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[..complete])
        .lines()
        .map(str::to_owned)
        .collect()
}
