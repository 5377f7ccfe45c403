//! The command line of `portbinder-exec`, the static client (exec/): the flags of
//! `portbinder exec` (src/cli.rs), parsed by hand because that executable links no
//! argument parser. tests/exec_parity.rs runs the same command lines through both and checks
//! that clap's flags and [`FLAGS`] are the same, so the two cannot drift apart.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::exec::{Request, find_shim};

/// The options of `portbinder exec`, as `portbinder-exec` knows them (besides `--help` and
/// `--version`).
pub const FLAGS: [&str; 4] = [
    "--socket-dir",
    "--preload",
    "--preload-lib",
    "--preload-any-address",
];

/// The directory of the daemon's sockets when `--socket-dir` is not given.
pub const DEFAULT_SOCKET_DIR: &str = portbinder_client::DEFAULT_SOCKET_DIR;

/// What `portbinder-exec --help` prints.
pub const HELP: &str = "\
Fetch bindings from portbinder and exec PROGRAM with them at fds 3, 4, ... (systemd's
LISTEN_FDS protocol), or with --preload for a program that just calls bind(2). The same
command as `portbinder exec`, as one static executable for containers.

Usage: portbinder-exec [OPTIONS] NAME[,NAME...]... -- PROGRAM [ARGS...]

Arguments:
  NAME[,NAME...]      Binding names, comma- or space-separated; their sockets are placed
                      in this order
  PROGRAM [ARGS...]   The program to run, and its arguments

Options:
  --socket-dir DIR    Directory of the daemon's Unix sockets [default: /run/portbinder]
  --preload           Hand the sockets to an LD_PRELOAD shim that serves the program's own
                      bind(2) calls, instead of LISTEN_FDS
  --preload-lib PATH  The shim library (default: beside this executable, else
                      /usr/lib/portbinder)
  --preload-any-address
                      With --preload, also serve a bind of a specific address (127.0.0.1:80)
                      with the binding's wildcard socket of the same port (0.0.0.0:80)
  -h, --help          Print this help
  -V, --version       Print the version
";

/// What a command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// Fetch and exec.
    Run(Request),
    /// Print [`HELP`].
    Help,
    /// Print the version.
    Version,
}

/// A command line that cannot be run (exit code 2, as clap's usage errors).
#[derive(Debug, thiserror::Error)]
#[error("{0} (see `portbinder-exec --help`)")]
pub struct UsageError(String);

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, UsageError> {
    let mut args = args.into_iter();
    let mut socket_dir: Option<PathBuf> = None;
    let mut preload = false;
    let mut preload_lib: Option<PathBuf> = None;
    let mut any_address = false;
    let mut names: Vec<String> = Vec::new();
    let mut command: Vec<OsString> = Vec::new();
    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            command.extend(args.by_ref());
            break;
        }
        if !bytes.starts_with(b"-") || bytes == b"-" {
            let text = arg.to_string_lossy();
            names.extend(text.split(',').map(str::to_owned));
            continue;
        }
        let text = arg.to_string_lossy();
        let (flag, inline) = match text.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
            _ => (&*text, None),
        };
        match (flag, inline) {
            ("-h" | "--help", None) => return Ok(Parsed::Help),
            ("-V" | "--version", None) => return Ok(Parsed::Version),
            ("--preload", None) if preload => return Err(twice(flag)),
            ("--preload", None) => preload = true,
            ("--preload-any-address", None) if any_address => return Err(twice(flag)),
            ("--preload-any-address", None) => any_address = true,
            ("--socket-dir", _) if socket_dir.is_some() => return Err(twice(flag)),
            ("--socket-dir", _) => socket_dir = Some(value(flag, "DIR", inline, &mut args)?),
            ("--preload-lib", _) if preload_lib.is_some() => return Err(twice(flag)),
            ("--preload-lib", _) => preload_lib = Some(value(flag, "PATH", inline, &mut args)?),
            (
                "--preload" | "--preload-any-address" | "-h" | "--help" | "-V" | "--version",
                Some(_),
            ) => {
                return Err(UsageError(format!("`{flag}` takes no value")));
            }
            _ => {
                return Err(UsageError(format!(
                    "unexpected argument `{text}`: the options are {}; the program and its \
                     arguments go after `--`",
                    FLAGS.join(", ")
                )));
            }
        }
    }
    if names.is_empty() {
        return Err(UsageError(
            "no binding name: write NAME[,NAME...] before `--`".to_owned(),
        ));
    }
    if command.is_empty() {
        return Err(UsageError(
            "no program to run: write `-- PROGRAM [ARGS...]` after the binding names".to_owned(),
        ));
    }
    for (given, flag) in [
        (preload_lib.is_some(), "--preload-lib"),
        (any_address, "--preload-any-address"),
    ] {
        if given && !preload {
            return Err(UsageError(format!("`{flag}` needs `--preload`")));
        }
    }
    Ok(Parsed::Run(Request {
        names,
        socket_dir: socket_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET_DIR)),
        preload: preload.then(|| preload_lib.unwrap_or_else(find_shim)),
        any_address,
        command,
    }))
}

fn twice(flag: &str) -> UsageError {
    UsageError(format!("`{flag}` is given twice"))
}

/// The value of `flag`: after `=`, or the next argument (which must not be an option).
fn value(
    flag: &str,
    what: &str,
    inline: Option<&str>,
    rest: &mut impl Iterator<Item = OsString>,
) -> Result<PathBuf, UsageError> {
    let value = match inline {
        Some(text) => Some(OsString::from(text)),
        None => rest.next(),
    };
    match value {
        Some(v) if !v.is_empty() && (inline.is_some() || !v.as_bytes().starts_with(b"-")) => {
            Ok(PathBuf::from(v))
        }
        _ => Err(UsageError(format!(
            "`{flag}` needs a value: `{flag} {what}`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Parsed, UsageError> {
        parse(args.iter().map(OsString::from))
    }

    fn request(args: &[&str]) -> Request {
        match parse_strs(args) {
            Ok(Parsed::Run(request)) => request,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn usage(args: &[&str]) -> String {
        match parse_strs(args) {
            Err(e) => e.to_string(),
            other => panic!("{args:?} should be a usage error: {other:?}"),
        }
    }

    #[test]
    fn names_options_and_the_program() {
        let r = request(&[
            "http,dns",
            "extra",
            "--socket-dir=/tmp/pb",
            "--",
            "prog",
            "-x",
            "--",
        ]);
        assert_eq!(r.names, ["http", "dns", "extra"]);
        assert_eq!(r.socket_dir, PathBuf::from("/tmp/pb"));
        assert_eq!(r.command, ["prog", "-x", "--"]);
        assert!(r.preload.is_none());

        let r = request(&[
            "--preload",
            "--preload-lib",
            "/x/shim.so",
            "http",
            "--",
            "p",
        ]);
        assert_eq!(r.preload, Some(PathBuf::from("/x/shim.so")));
        assert!(!r.any_address);
        let r = request(&["--preload-any-address", "--preload", "http", "--", "p"]);
        assert!(r.any_address && r.preload.is_some());
        assert_eq!(r.socket_dir, PathBuf::from("/run/portbinder"));
        // An empty name between commas is kept, so that exec refuses it as clap's parse does.
        assert_eq!(request(&["http,", "--", "p"]).names, ["http", ""]);
    }

    #[test]
    fn help_and_version() {
        assert!(matches!(parse_strs(&["http", "--help"]), Ok(Parsed::Help)));
        assert!(matches!(parse_strs(&["-V"]), Ok(Parsed::Version)));
        // After `--`, everything is the program's.
        assert!(matches!(
            parse_strs(&["h", "--", "p", "--help"]),
            Ok(Parsed::Run(_))
        ));
        for flag in FLAGS {
            assert!(
                HELP.contains(&format!("  {flag}")),
                "{flag} missing from HELP"
            );
        }
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        assert!(usage(&["http"]).contains("no program to run"));
        assert!(usage(&["--", "prog"]).contains("no binding name"));
        assert!(usage(&["--bogus", "http", "--", "p"]).contains("unexpected argument `--bogus`"));
        assert!(usage(&["--socket-dir"]).contains("`--socket-dir` needs a value"));
        assert!(usage(&["--socket-dir", "--preload", "h", "--", "p"]).contains("needs a value"));
        assert!(usage(&["--socket-dir=", "h", "--", "p"]).contains("needs a value"));
        assert!(usage(&["--preload", "--preload", "h", "--", "p"]).contains("given twice"));
        assert!(usage(&["--preload=yes", "h", "--", "p"]).contains("takes no value"));
        assert!(usage(&["--preload-lib", "/x", "h", "--", "p"]).contains("needs `--preload`"));
        assert!(
            usage(&["--preload-any-address", "h", "--", "p"])
                .contains("`--preload-any-address` needs `--preload`")
        );
        assert!(usage(&["h"]).ends_with("(see `portbinder-exec --help`)"));
    }
}
