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
//!
//! * `test_env.rs`: one test's world, [`TestEnv`], in its [`NetNs`] (`netns.rs`);
//! * `users.rs`: the [`User`]s the clients run as;
//! * `process.rs`: child processes ([`Proc`]) and how they ended ([`Outcome`]);
//! * `wait.rs`: the bounded waits ([`wait_until`] and the timeouts);
//! * `binary.rs`: the binary under test and the commands that run it ([`serve_command`],
//!   [`serve_under`], [`run_check`], [`serve_expect_failure`]...);
//! * `listen_fds.rs`: the daemon handed sockets as systemd does ([`serve_with_listen_fds`]);
//! * `daemon.rs`: the running [`Daemon`];
//! * `procfs.rs`: what `/proc` tells about a process;
//! * `syslog.rs` and `event.rs`: the syslog file and the audit lines in it ([`Event`]);
//! * `reports.rs`: what the clients report ([`Probe`], [`FdInfo`], [`Grants`]);
//! * `http.rs`: HTTP requests to the servers the tests start;
//! * `bindings.rs`: the bindings many tests configure ([`HTTP_BINDING`]...);
//! * `kernel.rs`: what the running kernel offers ([`kernel_landlock_abi`]);
//! * `fake_systemd.rs`: systemd's end of `NOTIFY_SOCKET` ([`fake_systemd::FakeSystemd`]);
//! * `reload.rs`: one SIGHUP and its audit lines ([`reload::reload`]).

// Each integration test crate uses a different subset of the harness.
#![allow(dead_code)]

mod binary;
mod bindings;
pub mod container;
mod daemon;
mod event;
pub mod exec_pair;
pub mod fake_daemon;
pub mod fake_systemd;
pub mod holder;
mod http;
mod kernel;
mod listen_fds;
pub mod load;
mod netns;
mod process;
mod procfs;
pub mod reload;
mod reports;
pub mod shim;
pub mod sockopts;
mod syslog;
mod test_env;
pub mod uidflood;
mod users;
mod wait;

// Each test binary uses its own part of the harness: a re-export one leaves unused is not dead.
#[allow(unused_imports)]
pub use self::{
    binary::{
        binary, built, portbinder_command, run, run_check, run_serve_expect_failure, serve_command,
        serve_expect_failure, serve_under, serve_under_setpriv, serve_without_cap_sys_ptrace,
    },
    bindings::{
        ANY_ADDRESS_HTTP, API_AND_WEB, DNS_BINDING, DUAL_STACK_HTTP, HIDE_PROC_SYS, HTTP_8080,
        HTTP_BINDING, HTTP_FOR_ANYONE, OPEN_HTTP, http_binding,
    },
    daemon::Daemon,
    event::Event,
    http::{http_get, try_http_get},
    kernel::kernel_landlock_abi,
    listen_fds::{serve_with_listen_fds, serve_with_listen_fds_under},
    netns::NetNs,
    process::{Outcome, Proc, inherit_fd},
    procfs::{
        cpu_ticks, holds_nonblocking, nofile_limits, open_flags, proc_fd_links, proc_fds,
        proc_status, socket_inodes, zombie_exit,
    },
    reports::{FdInfo, Grants, Probe},
    syslog::{syslog_lines_since, syslog_offset, syslog_path},
    test_env::{TestEnv, UNIT_CAPS},
    users::{DAEMON, DAEMON_IN_WWW_DATA, NOBODY, ROOT, User, WWW_DATA},
    wait::{EXIT_TIMEOUT, LOG_TIMEOUT, STARTUP_TIMEOUT, wait_until},
};
