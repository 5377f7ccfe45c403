//! `portbinder exec` and the static `portbinder-exec` fail alike: a broken or stale daemon
//! gives the same exit code and messages from both, and a usage error exits 2 in both and runs
//! nothing (each naming what is wrong in its own words). The grants are in tests/exec_parity.rs.

mod common;

use std::ffi::OsString;
use std::fs;
use std::os::unix::net::UnixListener;

use common::exec_pair::Pair;
use common::*;

#[test]
fn broken_and_stale_daemons_give_the_same_errors() {
    let env = TestEnv::new();
    let pair = Pair::new(&env);
    let dir = env.path().join("fake");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let world = |path: &std::path::Path| {
        fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap()
    };
    // A stale socket file: bound, then its listener closed (a daemon killed with -9).
    drop(UnixListener::bind(dir.join("stale.sock")).unwrap());
    world(&dir.join("stale.sock"));
    // A broken daemon: announces 2 sockets, sends 1, to each of the two clients.
    let server = fake_daemon::announcing_2_sending_1(&dir.join("broken.sock"), 2);
    let dir = dir.to_str().unwrap();
    let stale = pair.same(
        &env,
        WWW_DATA,
        &["--socket-dir", dir, "stale", "--", "/bin/true"],
        7,
    );
    assert!(stale.stderr.contains("Connection refused"), "{stale}");
    let broken = pair.same(
        &env,
        WWW_DATA,
        &["--socket-dir", dir, "broken", "--", "/bin/true"],
        8,
    );
    assert!(
        broken
            .stderr
            .contains("announces 2 descriptors but carries 1"),
        "{broken}"
    );
    server.join().unwrap();
}

#[test]
fn usage_errors_exit_2_in_both_and_run_nothing() {
    let env = TestEnv::new();
    let pair = Pair::new(&env);
    let marker = env.path().join("ran");
    let m = marker.to_str().unwrap();
    // (arguments, what both messages must name)
    let cases: &[(&[&str], &str)] = &[
        (&["http", "/usr/bin/touch", m], "PROGRAM"),
        (&["--", "/usr/bin/touch", m], "NAME"),
        (&["--bogus", "http", "--", "/usr/bin/touch", m], "--bogus"),
        (&["http", "--socket-dir"], "--socket-dir"),
        (
            &["--preload-lib", "/x.so", "http", "--", "/usr/bin/touch", m],
            "--preload",
        ),
        (
            &["--preload-any-address", "http", "--", "/usr/bin/touch", m],
            "--preload",
        ),
        (
            &[
                "--socket-dir",
                "/a",
                "--socket-dir",
                "/b",
                "http",
                "--",
                "/usr/bin/touch",
                m,
            ],
            "--socket-dir",
        ),
    ];
    for (args, named) in cases {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        for outcome in pair.run(&env, WWW_DATA, &args, |_| {}) {
            assert_eq!(outcome.code, Some(2), "{args:?}:\n{outcome}");
            assert!(
                outcome.stderr.contains(named),
                "{args:?} must name {named}:\n{outcome}"
            );
            assert_eq!(outcome.stdout, "", "{outcome}");
        }
        assert!(!marker.exists(), "{args:?}: the program ran");
    }
    // The static client's own help and version.
    let [_, help] = pair.run(&env, WWW_DATA, &["--help".into()], |_| {});
    help.assert_success();
    assert!(
        help.stdout
            .contains("Usage: portbinder-exec [OPTIONS] NAME[,NAME...]... -- PROGRAM")
    );
}
