//! The crate's only `unsafe`.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Takes ownership of a descriptor that recvmsg just installed with SCM_RIGHTS.
pub(crate) fn own_received(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel installed this descriptor during the recvmsg that returned it;
    // nothing else in the process knows its number, so it is owned exactly once.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
