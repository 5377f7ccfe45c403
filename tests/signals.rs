//! Signals: SIGTERM and SIGINT stop cleanly (socket files removed, event=stop, exit 0);
//! SIGHUP is logged and the daemon keeps serving (what a reload applies and refuses:
//! tests/reload.rs, tests/reload_refused.rs).

mod common;

use nix::sys::signal::Signal;

use common::*;

const TWO_BINDINGS: &str = r#"
[binding.web]
listen = ["127.0.0.1:80"]
group = "www-data"

[binding.api]
listen = ["127.0.0.1:8080"]
group = "www-data"
"#;

/// Starts a two-binding daemon, makes one grant, stops it with `sig` and checks the outcome.
fn stops_cleanly_on(sig: Signal) {
    let env = TestEnv::new();
    let mut daemon = env.serve(&env.config(TWO_BINDINGS));
    assert!(env.socket("web").exists() && env.socket("api").exists());
    env.probe(WWW_DATA, &env.socket("web")).assert_granted(1);
    daemon.wait_event("grant", &[]);

    let status = daemon.stop_with(sig);
    assert_eq!(status.code(), Some(0), "{status}\n{}", daemon.report());
    assert!(
        env.socket_files().is_empty(),
        "socket files left after {sig}: {:?}",
        env.socket_files()
    );
    let stop = daemon.wait_event("stop", &[]);
    stop.assert_fields(&[
        ("event", "stop"),
        ("signal", sig.as_str()),
        ("grants", "1"),
        ("denials", "0"),
    ]);
}

#[test]
fn sigterm_removes_sockets_logs_stop_and_exits_0() {
    stops_cleanly_on(Signal::SIGTERM);
}

#[test]
fn sigint_stops_like_sigterm() {
    stops_cleanly_on(Signal::SIGINT);
}

#[test]
fn sighup_is_logged_and_serving_goes_on() {
    let env = TestEnv::new();
    let mut daemon = env.serve(&env.config(TWO_BINDINGS));
    daemon.signal(Signal::SIGHUP);
    let reload = daemon.wait_event("reload", &[("signal", "SIGHUP")]);
    assert!(reload.get("result").is_some(), "{}", reload.line);

    assert!(daemon.is_running(), "{}", daemon.report());
    env.probe(WWW_DATA, &env.socket("web")).assert_granted(1);
    env.probe(WWW_DATA, &env.socket("api")).assert_granted(1);
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.report());
}
