//! The binary under test and the one-shot commands run with it (`check`, a `serve` that must
//! fail). `PORTBINDER_TEST_BIN` points the suite at an installed binary instead of cargo's.

use std::ffi::OsStr;
use std::path::PathBuf;
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
