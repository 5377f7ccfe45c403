//! Audit log: the start, drop, ready, grant, deny and stop lines reach rsyslogd with their
//! fields and facility, untrusted text is escaped, and floods of denials are rate limited.

mod common;

use common::*;

/// A dual-stack binding that anyone may connect to, so that the daemon decides.
const OPEN_BINDING: &str = r#"
[binding.http]
listen = ["0.0.0.0:80", "[::]:80"]
group = "www-data"
mode = "0666"
"#;

#[test]
fn lifecycle_lines_reach_syslog_with_their_fields() {
    let env = TestEnv::new();
    let mut daemon = env.serve(&env.config(OPEN_BINDING));
    let socket = env.socket("http");
    let granted = env.probe(WWW_DATA, &socket);
    granted.assert_granted(2);
    let denied = env.probe(NOBODY, &socket);
    denied.assert_denied();
    daemon.wait_event("deny", &[]);
    let status = daemon.stop();
    assert_eq!(status.code(), Some(0), "{}", daemon.report());
    daemon.wait_event("stop", &[]);

    let events = daemon.events();
    for event in &events {
        assert_eq!(event.facility, "authpriv", "{}", event.line);
        assert_eq!(
            event.format_errors(),
            Vec::<String>::new(),
            "{}",
            event.line
        );
    }
    let kinds: Vec<&str> = events.iter().map(Event::kind).collect();
    assert_eq!(
        kinds,
        ["start", "drop", "ready", "grant", "deny", "stop"],
        "{}",
        daemon.report()
    );

    let socket = socket.display().to_string();
    events[0].assert_fields(&[
        ("event", "start"),
        ("binding", "http"),
        ("listen", "tcp://0.0.0.0:80,tcp://[::]:80"),
        ("socket", &socket),
        ("group", "www-data"),
        ("mode", "0666"),
    ]);
    events[1].assert_fields(&[
        ("event", "drop"),
        ("result", "verified"),
        ("uid", "65534"),
        ("gid", "65534"),
        ("groups", "none"),
        ("caps", "none"),
        ("no_new_privs", "1"),
    ]);
    events[2].assert_fields(&[("event", "ready"), ("bindings", "1")]);
    events[3].assert_fields(&[
        ("event", "grant"),
        ("binding", "http"),
        ("fds", "2"),
        ("pid", &granted.pid.to_string()),
        ("uid", "33"),
        ("gid", "33"),
        ("user", "www-data"),
        ("comm", "python3"),
    ]);
    let deny = &events[4];
    assert_eq!(deny.severity, "warning", "{}", deny.line);
    let reason = deny.get("reason").unwrap_or_default().to_owned();
    assert!(!reason.is_empty(), "{}", deny.line);
    deny.assert_fields(&[
        ("event", "deny"),
        ("binding", "http"),
        ("pid", &denied.pid.to_string()),
        ("uid", "65534"),
        ("gid", "65534"),
        ("user", "nobody"),
        ("comm", "python3"),
        ("reason", &reason),
    ]);
    events[5].assert_fields(&[
        ("event", "stop"),
        ("signal", "SIGTERM"),
        ("grants", "1"),
        ("denials", "1"),
    ]);
}

#[test]
fn facility_option_overrides_the_file() {
    let env = TestEnv::new();
    let config = env.config(OPEN_BINDING);
    let daemon = Daemon::start(&[
        "--config".as_ref(),
        config.as_os_str(),
        "--facility".as_ref(),
        "local3".as_ref(),
    ]);
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(2);
    daemon.wait_event("grant", &[]);
    for event in daemon.events() {
        assert_eq!(event.facility, "local3", "{}", event.line);
    }
}

#[test]
fn log_stderr_writes_the_same_bodies_to_stderr() {
    let env = TestEnv::new();
    let config = env.config(OPEN_BINDING);
    let mut daemon = Daemon::start(&[
        "--config".as_ref(),
        config.as_os_str(),
        "--log".as_ref(),
        "stderr".as_ref(),
    ]);
    env.probe(WWW_DATA, &env.socket("http")).assert_granted(2);
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.report());

    let stderr = daemon.stderr();
    for body in [
        "event=start binding=http listen=tcp://0.0.0.0:80,tcp://[::]:80 ",
        "event=drop result=verified uid=65534 gid=65534 groups=none caps=none no_new_privs=1",
        "event=ready bindings=1",
        "event=grant binding=http fds=2 pid=",
        "event=stop signal=SIGTERM grants=1 denials=0",
    ] {
        assert!(stderr.contains(body), "stderr lacks {body:?}:\n{stderr}");
    }
    assert_eq!(
        daemon.log_lines(),
        Vec::<String>::new(),
        "nothing to syslog"
    );
}

#[test]
fn newline_in_process_name_is_escaped() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(OPEN_BINDING));
    let offset = syslog_offset();
    let socket = env.socket("http");

    // The client decodes the escape, so its comm really contains a newline.
    let probe: Probe = env
        .client(
            WWW_DATA,
            &[
                r"comm".as_ref(),
                r"evil\nevent=x".as_ref(),
                socket.as_os_str(),
            ],
        )
        .finish(EXIT_TIMEOUT)
        .json();
    probe.assert_granted(2);

    let grant = daemon.wait_event("grant", &[("pid", &probe.pid.to_string())]);
    assert!(
        grant.line.ends_with(r#" comm="evil\x0aevent\x3dx""#),
        "{}",
        grant.line
    );
    assert_eq!(
        grant.format_errors(),
        Vec::<String>::new(),
        "{}",
        grant.line
    );
    // rsyslogd keeps control characters as they are (see scripts/test): a raw newline would
    // have split the message into a second line starting with the injected text.
    let injected: Vec<String> = syslog_lines_since(offset)
        .into_iter()
        .filter(|l| l.starts_with("event=") || l.contains(": event=x"))
        .collect();
    assert_eq!(injected, Vec::<String>::new());
    let mentions = daemon
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("evil"))
        .count();
    assert_eq!(mentions, 1, "{}", daemon.report());
}

#[test]
fn deny_flood_is_rate_limited_and_counted() {
    let env = TestEnv::new();
    let mut daemon = env.serve(&env.config(OPEN_BINDING));
    let socket = env.socket("http");

    let flood = env.fetch_many(NOBODY, &socket, 200);
    assert_eq!((flood.granted, flood.denied), (0, 200), "{flood:?}");
    // Another uid has its own budget: its denial is logged in full despite the flood.
    env.probe(DAEMON, &socket).assert_denied();
    daemon.wait_event("deny", &[("uid", "1")]);
    // Grants are never held back by the rate limiter.
    env.probe(WWW_DATA, &socket).assert_granted(2);
    daemon.wait_event("grant", &[("uid", "33")]);

    // Stopping flushes the pending suppressed count instead of waiting for the window to end.
    let status = daemon.stop();
    assert_eq!(status.code(), Some(0), "{}", daemon.report());
    let stop = daemon.wait_event("stop", &[]);
    daemon.wait_event("suppressed", &[("uid", "65534")]);
    assert_eq!(stop.get("denials"), Some("201"), "{}", stop.line);
    assert_eq!(stop.get("grants"), Some("1"), "{}", stop.line);

    let denies = daemon
        .events_of("deny")
        .into_iter()
        .filter(|e| e.get("uid") == Some("65534"))
        .count() as u64;
    let suppressed: Vec<Event> = daemon
        .events_of("suppressed")
        .into_iter()
        .filter(|e| e.get("uid") == Some("65534"))
        .collect();
    assert!(
        (1..=21).contains(&denies),
        "{denies} deny lines for uid 65534\n{}",
        daemon.report()
    );
    assert!(
        !suppressed.is_empty(),
        "no event=suppressed\n{}",
        daemon.report()
    );
    for line in &suppressed {
        assert_eq!(line.get("kind"), Some("deny"), "{}", line.line);
        assert_eq!(line.get("binding"), Some("http"), "{}", line.line);
    }
    let counted: u64 = suppressed.iter().map(|e| e.number("count")).sum();
    assert_eq!(
        denies + counted,
        200,
        "every denial is either logged or counted\n{}",
        daemon.report()
    );
}
