//! The client's decoder of the daemon's answer, fed arbitrary payloads with any number of
//! descriptors (0 to 255, the first input byte) and the truncation flag (the second): it
//! must never panic, accept exactly the two well-formed answers, and hand back exactly the
//! descriptors it was given (it owns them: every other path closes them).

#![no_main]

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portbinder_client::protocol::{Answer, ProtocolError, decode};

fn dev_null() -> &'static File {
    static NULL: OnceLock<File> = OnceLock::new();
    NULL.get_or_init(|| File::open("/dev/null").expect("open /dev/null"))
}

fuzz_target!(|data: &[u8]| {
    let [count, flags, payload @ ..] = data else {
        return;
    };
    let truncated = flags & 1 == 1;
    let fds: Vec<OwnedFd> = (0..*count)
        .map(|_| OwnedFd::from(dev_null().try_clone().expect("dup /dev/null")))
        .collect();
    let raw: Vec<i32> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    match decode(payload, fds, truncated) {
        Ok(Answer::Granted(granted)) => {
            assert!(!truncated);
            assert_eq!(payload, [*count]);
            assert!(*count >= 1);
            let got: Vec<i32> = granted.iter().map(AsRawFd::as_raw_fd).collect();
            assert_eq!(got, raw, "the descriptors, in order");
        }
        Ok(Answer::Denied(reason)) => {
            assert!(!truncated && *count == 0 && payload.first() == Some(&0));
            assert_eq!(reason, String::from_utf8_lossy(&payload[1..]));
        }
        Err(ProtocolError::Truncated) => assert!(truncated),
        Err(ProtocolError::Empty) => assert!(payload.is_empty()),
        Err(ProtocolError::CountMismatch {
            announced,
            received,
        }) => {
            assert_eq!((announced, received), (payload[0], usize::from(*count)));
            assert_ne!(usize::from(announced), received);
        }
        Err(ProtocolError::Malformed(_)) => assert!(!payload.is_empty()),
    }
});
