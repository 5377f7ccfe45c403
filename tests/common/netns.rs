//! The network namespace each test runs in: a private loopback, so that tests bind the same
//! privileged ports in parallel and nothing they do reaches the host's network.

use std::io;
use std::marker::PhantomData;
use std::process::Command;

/// Proof that the calling thread has entered a network namespace of its own, with `lo` up.
///
/// The namespace belongs to the thread (hence `!Send`): processes and threads spawned from it
/// inherit it, so the daemon and the clients a test starts all see the same private loopback,
/// and tests can bind 127.0.0.1:80 and [::1]:80 in parallel.
pub struct NetNs {
    _thread_bound: PhantomData<*const ()>,
}

impl NetNs {
    /// Moves the calling thread into a new network namespace and brings `lo` up.
    pub fn enter() -> NetNs {
        // SAFETY: unshare(2) takes no pointers; CLONE_NEWNET only changes the calling thread's
        // network namespace, which is allowed in a multi-threaded process.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET): {}",
            io::Error::last_os_error()
        );
        let out = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .output()
            .expect("run `ip link set lo up` (iproute2)");
        assert!(
            out.status.success(),
            "ip link set lo up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        NetNs {
            _thread_bound: PhantomData,
        }
    }
}
