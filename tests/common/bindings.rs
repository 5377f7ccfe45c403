//! The bindings that many tests configure, as TOML tables to follow [`TestEnv::globals`]
//! (through [`TestEnv::config`]): written once here, so that a test shows only what its case
//! adds to them.
//!
//! [`TestEnv::globals`]: super::TestEnv::globals
//! [`TestEnv::config`]: super::TestEnv::config

/// `http` on 127.0.0.1:80 for group www-data, with the default mode 0660.
pub const HTTP_BINDING: &str = r#"
[binding.http]
listen = ["127.0.0.1:80"]
group = "www-data"
"#;

/// [`HTTP_BINDING`] with more keys of its table (`extra`: TOML lines such as `mode = "0666"`).
pub fn http_binding(extra: &str) -> String {
    format!("{HTTP_BINDING}{extra}\n")
}

/// `http` on both loopback addresses, 127.0.0.1:80 and [::1]:80 (a grant of two sockets),
/// for group www-data.
pub const DUAL_STACK_HTTP: &str = r#"
[binding.http]
listen = ["127.0.0.1:80", "[::1]:80"]
group = "www-data"
"#;

/// [`DUAL_STACK_HTTP`] that anyone may connect to (mode 0666), so that the daemon, not the
/// socket file's mode, decides every case.
pub const OPEN_HTTP: &str = r#"
[binding.http]
listen = ["127.0.0.1:80", "[::1]:80"]
group = "www-data"
mode = "0666"
"#;

/// `http` on every address, 0.0.0.0:80 and [::]:80, for group www-data.
pub const ANY_ADDRESS_HTTP: &str = r#"
[binding.http]
listen = ["0.0.0.0:80", "[::]:80"]
group = "www-data"
"#;

/// `dns`: one UDP socket on 127.0.0.1:53 for group www-data.
pub const DNS_BINDING: &str = r#"
[binding.dns]
listen = ["udp://127.0.0.1:53"]
group = "www-data"
"#;

/// A wrapper for [`TestEnv::serve_as_nobody_with_caps_under`] that hides /proc/sys from the
/// daemon as systemd's `ProcSubset=pid` does (the shipped unit has it): an empty read-only
/// tmpfs over it, in a mount namespace of the daemon's own.
///
/// [`TestEnv::serve_as_nobody_with_caps_under`]: super::TestEnv::serve_as_nobody_with_caps_under
pub const HIDE_PROC_SYS: &[&str] = &[
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "--",
    "sh",
    "-c",
    "mount -t tmpfs -o ro tmpfs /proc/sys && exec \"$@\"",
    "sh",
];

/// `http` on 127.0.0.1:8080, a port anyone may bind, for group www-data.
pub const HTTP_8080: &str = r#"
[binding.http]
listen = ["127.0.0.1:8080"]
group = "www-data"
"#;

/// `http` on 127.0.0.1:80 whose socket file anyone may connect to (mode 0666), so that the
/// daemon's rules, not the file's mode, decide.
pub const HTTP_FOR_ANYONE: &str = r#"
[binding.http]
listen = ["127.0.0.1:80"]
group = "www-data"
mode = "0666"
"#;

/// Two bindings on ports anyone may bind: `api` comes first (bindings are in name order),
/// so a reload step on `web` fails after `api`'s changes were applied.
pub const API_AND_WEB: &str = r#"
[binding.api]
listen = ["127.0.0.1:8080"]
group = "www-data"

[binding.web]
listen = ["127.0.0.1:80"]
group = "www-data"
"#;
