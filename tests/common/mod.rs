//! Shared harness for portbinder's integration tests.
//!
//! Everything is real: the daemon binary runs as root and drops to `nobody`, binds port 80 in a
//! network namespace of the test's own, logs to the rsyslogd that `scripts/test` starts on
//! `/dev/log`, and is talked to by `tests/clients/client.py` running as Debian's unprivileged
//! accounts. Run the suite with `bash scripts/test` (as root).
//!
//! Environment:
//! * `PORTBINDER_TEST_SYSLOG` (required): the file rsyslogd writes every message to, one
//!   `facility.severity TAG MSG` line each.
//! * `PORTBINDER_TEST_BIN` (optional): the binary under test, instead of the one cargo built
//!   (for running the suite against an installed package).
//!
//! One noun a file, all re-exported here so that a test file needs only `use common::*;`:
//! [`TestEnv`] (`test_env.rs`, in its [`NetNs`], `netns.rs`), the [`User`]s clients run as
//! (`users.rs`), child processes ([`Proc`], [`Outcome`]: `process.rs`), the bounded waits
//! (`wait.rs`), the binary under test and its one-shot runs (`binary.rs`), the running
//! [`Daemon`] (`daemon.rs`), `/proc` (`procfs.rs`), the syslog file (`syslog.rs`), its audit
//! lines ([`Event`]: `event.rs`), what the clients report ([`Probe`]: `reports.rs`), HTTP
//! requests (`http.rs`), the bindings many tests configure (`bindings.rs`) and the sockets
//! handed to the daemon as systemd does (`listen_fds.rs`).

// Each integration test crate uses a different subset of the harness.
#![allow(dead_code)]

mod binary;
mod bindings;
mod daemon;
mod event;
mod http;
mod kernel;
mod listen_fds;
mod netns;
mod process;
mod procfs;
mod reports;
mod syslog;
mod test_env;
mod users;
mod wait;

// Each test binary uses its own part of the harness: a re-export one leaves unused is not dead.
#[allow(unused_imports)]
pub use self::{
    binary::{
        binary, built, portbinder_command, run, run_check, run_serve_expect_failure, serve_command,
        serve_expect_failure, serve_under,
    },
    bindings::{
        ANY_ADDRESS_HTTP, DNS_BINDING, DUAL_STACK_HTTP, HTTP_BINDING, OPEN_HTTP, http_binding,
    },
    daemon::Daemon,
    event::Event,
    http::{http_get, try_http_get},
    kernel::kernel_landlock_abi,
    listen_fds::serve_with_listen_fds,
    netns::NetNs,
    process::{Outcome, Proc},
    procfs::{cpu_ticks, nofile_limits, proc_fd_links, proc_fds, proc_status},
    reports::{FdInfo, Grants, Probe},
    syslog::{syslog_lines_since, syslog_offset, syslog_path},
    test_env::TestEnv,
    users::{DAEMON, DAEMON_IN_WWW_DATA, NOBODY, ROOT, User, WWW_DATA},
    wait::{EXIT_TIMEOUT, LOG_TIMEOUT, STARTUP_TIMEOUT, wait_until},
};
