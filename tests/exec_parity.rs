//! `portbinder exec` and the static `portbinder-exec` are one command: clap's flags for
//! `exec` are the ones the static client parses by hand, and the same command lines, run
//! through both against a real daemon, give the same exit code, the same stdout and the same
//! stderr, in every case tests/exec.rs covers for `portbinder exec`. The failures (a broken
//! or stale daemon, usage errors) are in tests/exec_parity_errors.rs.

mod common;

use std::fs;
use std::os::fd::AsRawFd;

use clap::CommandFactory;
use common::container::compile_static;
use common::exec_pair::Pair;
use common::*;

const BINDINGS: &str = r#"
[binding.http]
listen = ["127.0.0.1:80", "[::1]:80"]
group = "www-data"
mode = "0666"

[binding.dns]
listen = ["udp://127.0.0.1:53"]
group = "www-data"
"#;

/// What the program run by exec was given (C, compiled static so that the shim never loads).
const SHOWFDS_C: &str = include_str!("clients/showfds.c");

#[test]
fn both_clients_know_the_same_flags() {
    let cli = portbinder::cli::Cli::command();
    let exec = cli.find_subcommand("exec").expect("an exec subcommand");
    let mut clap_flags: Vec<String> = exec
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| !["help", "version"].contains(l))
        .map(|l| format!("--{l}"))
        .collect();
    clap_flags.sort();
    let mut ours: Vec<String> = portbinder::caller::args::FLAGS
        .iter()
        .map(|f| f.to_string())
        .collect();
    ours.sort();
    assert_eq!(
        clap_flags, ours,
        "src/cli.rs (ExecArgs) and exec/src/args.rs (FLAGS and the parser) must offer the same flags"
    );
    for flag in &ours {
        assert!(
            portbinder::caller::args::HELP.contains(flag.as_str()),
            "{flag} is missing from portbinder-exec --help"
        );
    }
    // The same default socket directory.
    let default = exec
        .get_arguments()
        .find(|a| a.get_long() == Some("socket-dir"))
        .and_then(|a| a.get_default_values().first().cloned());
    assert_eq!(
        default.as_deref().and_then(|d| d.to_str()),
        Some(portbinder::caller::args::DEFAULT_SOCKET_DIR)
    );
}

#[test]
fn the_same_command_lines_give_the_same_results() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(BINDINGS));
    let pair = Pair::new(&env);
    let dir = env.socket_dir();
    let dir = dir.to_str().unwrap();

    let show = compile_static(&env, SHOWFDS_C, "showfds");
    let show = show.to_str().unwrap();

    // Granted: the same sockets at the same fds, the same variables.
    let shown = pair.same(
        &env,
        WWW_DATA,
        &["--socket-dir", dir, "http,dns", "--", show],
        0,
    );
    assert_eq!(
        shown.stdout,
        "LISTEN_FDS=3 LISTEN_FDNAMES=http:http:dns LISTEN_PID=own\nLD_PRELOAD=- PORTBINDER_FDS=- PORTBINDER_PRELOAD_ANY_ADDRESS=-\n\
         fd 3: socket\nfd 4: socket\nfd 5: socket\nfd 6: closed\n"
    );
    // Names as separate arguments, options after them, `--socket-dir=DIR`.
    pair.same(
        &env,
        WWW_DATA,
        &["dns", &format!("--socket-dir={dir}"), "http", "--", show],
        0,
    );
    // --preload: the shim's variables instead of LISTEN_*.
    let shim = env.preload_lib();
    let preloaded = pair.same(
        &env,
        WWW_DATA,
        &[
            "--preload",
            "--preload-lib",
            shim.to_str().unwrap(),
            "--socket-dir",
            dir,
            "http",
            "--",
            show,
        ],
        0,
    );
    assert_eq!(
        preloaded.stdout,
        format!(
            "LISTEN_FDS=- LISTEN_FDNAMES=- LISTEN_PID=-\nLD_PRELOAD={} PORTBINDER_FDS=3,4 PORTBINDER_PRELOAD_ANY_ADDRESS=-\n\
             fd 3: socket\nfd 4: socket\nfd 5: closed\nfd 6: closed\n",
            shim.display()
        )
    );

    // --preload-any-address: the same, and the shim told to serve any address.
    let any = pair.same(
        &env,
        WWW_DATA,
        &[
            "--preload",
            "--preload-any-address",
            "--preload-lib",
            shim.to_str().unwrap(),
            "--socket-dir",
            dir,
            "http",
            "--",
            show,
        ],
        0,
    );
    assert!(
        any.stdout.contains(" PORTBINDER_PRELOAD_ANY_ADDRESS=1\n"),
        "{any}"
    );

    // Every runtime error, with its code and the same words.
    let failures: &[(User, &[&str], i32)] = &[
        (WWW_DATA, &["pb-parity-none", "--", "/bin/true"], 7), // the default directory
        (
            WWW_DATA,
            &["--socket-dir", dir, "http,nope", "--", "/bin/true"],
            7,
        ),
        (NOBODY, &["--socket-dir", dir, "http", "--", "/bin/true"], 6), // by the daemon
        (DAEMON, &["--socket-dir", dir, "dns", "--", "/bin/true"], 6),  // by the file's mode
        (
            WWW_DATA,
            &["--socket-dir", dir, "../etc", "--", "/bin/true"],
            2,
        ),
        (
            WWW_DATA,
            &["--socket-dir", dir, "http,", "--", "/bin/true"],
            2,
        ),
        (
            WWW_DATA,
            &["--socket-dir", dir, "http", "--", "/nonexistent/server"],
            127,
        ),
        (
            WWW_DATA,
            &["--socket-dir", dir, "http", "--", "/etc/passwd"],
            126,
        ),
        (
            WWW_DATA,
            &[
                "--preload",
                "--preload-lib",
                "/nonexistent/shim.so",
                "--socket-dir",
                dir,
                "http",
                "--",
                "/bin/true",
            ],
            9,
        ),
    ];
    for (user, args, code) in failures {
        let outcome = pair.same(&env, *user, args, *code);
        assert!(
            outcome.stderr.starts_with("portbinder: error: "),
            "{outcome}"
        );
    }
    // fd 3 already open: neither clobbers it.
    let file = fs::File::open("/etc/hostname").unwrap();
    let raw = file.as_raw_fd();
    pair.same_with(
        &env,
        WWW_DATA,
        &["--socket-dir", dir, "http", "--", "/bin/true"],
        9,
        |cmd| inherit_fd(cmd, raw, 3),
    );
    drop(daemon);
}
