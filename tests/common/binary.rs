//! The binary under test and the commands that run it: `serve` directly or through a wrapper
//! that execs it, and the one-shot runs (`check`, a `serve` that must fail).
//! `PORTBINDER_TEST_BIN` points the suite at an installed binary instead of cargo's.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{EXIT_TIMEOUT, Outcome, Proc};

/// The binary under test.
pub fn binary() -> PathBuf {
    std::env::var_os("PORTBINDER_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_portbinder")))
}

/// A file built next to the binary under test (`target/debug/examples/NAME`, …).
pub fn built(relative: &str) -> PathBuf {
    binary().with_file_name(relative)
}

/// `portbinder <args...>` with stdio piped, ready for [`Proc::spawn`] or [`Daemon::spawn`].
pub fn portbinder_command<S: AsRef<OsStr>>(args: &[S]) -> Command {
    let mut cmd = Command::new(binary());
    cmd.args(args);
    cmd
}

/// `portbinder serve --config CONFIG`, ready for [`Daemon::spawn`] or [`Proc::spawn`].
///
/// [`Daemon::spawn`]: super::Daemon::spawn
pub fn serve_command(config: &Path) -> Command {
    portbinder_command(&serve_args(config))
}

/// `WRAPPER... portbinder serve --config CONFIG`: the daemon started through `wrapper`
/// (setpriv, prlimit, unshare or sh, with its arguments), which ends by exec'ing it, so that
/// the pid is the daemon's.
pub fn serve_under(mut wrapper: Command, config: &Path) -> Command {
    wrapper.arg(binary()).args(serve_args(config));
    wrapper
}

/// `portbinder serve --config CONFIG` under `setpriv SETPRIV… --`.
pub fn serve_under_setpriv(setpriv: &[&str], config: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(setpriv).arg("--");
    serve_under(cmd, config)
}

/// `portbinder serve --config CONFIG` as root without CAP_SYS_PTRACE (so no recovery from
/// other processes), run to its end.
pub fn serve_without_cap_sys_ptrace(config: &Path) -> Outcome {
    Proc::spawn(
        serve_under_setpriv(&["--bounding-set=-sys_ptrace"], config),
        "serve without CAP_SYS_PTRACE",
    )
    .finish(EXIT_TIMEOUT)
}

fn serve_args(config: &Path) -> [&OsStr; 3] {
    ["serve".as_ref(), "--config".as_ref(), config.as_os_str()]
}

/// Runs `portbinder <args...>` to completion (bounded by [`EXIT_TIMEOUT`]).
pub fn run<S: AsRef<OsStr>>(args: &[S]) -> Outcome {
    Proc::spawn(portbinder_command(args), "portbinder").finish(EXIT_TIMEOUT)
}

/// Runs `portbinder check <args...>`.
pub fn run_check<S: AsRef<OsStr>>(args: &[S]) -> Outcome {
    let mut all: Vec<&OsStr> = vec![OsStr::new("check")];
    all.extend(args.iter().map(AsRef::as_ref));
    run(&all)
}

/// Runs `portbinder serve <args...>`, which is expected to fail: panics if it is still running
/// after [`EXIT_TIMEOUT`] (it is killed then).
pub fn run_serve_expect_failure<S: AsRef<OsStr>>(args: &[S]) -> Outcome {
    let mut all: Vec<&OsStr> = vec![OsStr::new("serve")];
    all.extend(args.iter().map(AsRef::as_ref));
    let outcome = run(&all);
    assert_ne!(
        outcome.code,
        Some(0),
        "serve was expected to fail:\n{outcome}"
    );
    outcome
}

/// Runs `portbinder serve --config CONFIG`, which is expected to fail (as
/// [`run_serve_expect_failure`]).
pub fn serve_expect_failure(config: &Path) -> Outcome {
    run_serve_expect_failure(&["--config".as_ref(), config.as_os_str()])
}
