//! `portbinder-exec`: `portbinder exec` as one small executable for containers. Built
//! static (scripts/build-static-client), it needs no library from the image it runs in, so
//! it can be bind-mounted read-only into any root filesystem (Debian, Alpine, distroless,
//! an empty one): it fetches the bindings through their bind-mounted Unix sockets, places
//! them at fds 3, 4, … and execs the program with `LISTEN_FDS`, exactly as `portbinder
//! exec` does, with the same flags, messages and exit codes (README, "Exit codes").
//!
//! It is the same code as `portbinder exec` (this crate's library), with a hand-written
//! argument parser instead of clap. It reads no configuration, looks up no user or group
//! name and loads nothing at run time (no NSS, no dlopen).

use std::error::Error;
use std::process::ExitCode;

use portbinder_exec::args::{self, Parsed};
use portbinder_exec::exec;

fn main() -> ExitCode {
    match args::parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Help) => {
            print!("{}", args::HELP);
            ExitCode::SUCCESS
        }
        Ok(Parsed::Version) => {
            println!("portbinder-exec {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Parsed::Run(request)) => {
            // SAFETY: this program never starts a thread; main's is its only one.
            let error = unsafe { exec::exec(&request) };
            report(&error);
            ExitCode::from(error.exit_code() as u8)
        }
        Err(usage) => {
            report(&usage);
            ExitCode::from(2)
        }
    }
}

/// Prints `error` as `portbinder` does: `portbinder: error: …` and one `  caused by: …` line
/// per source.
fn report(error: &dyn Error) {
    eprintln!("portbinder: error: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
}
