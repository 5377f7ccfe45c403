//! What the running kernel offers, for the tests whose expectations depend on it.

/// The kernel's Landlock ABI (0 without Landlock), asked the way the landlock crate asks.
pub fn kernel_landlock_abi() -> i32 {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) reads no
    // memory and only returns the ABI version (or -1 with errno).
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    abi.max(0) as i32
}
