//! Hostile peers, one at a time: peers that die before their answer or whose pid is reused;
//! peers in another user namespace or without a passwd entry; hostile process names. Each
//! is answered by its real ids and logged exactly, on one well-formed line.
//!
//! (The floods of hostile peers are in hostile.rs.)

mod adversary;
mod common;

use std::fs;
use std::process::Command;
use std::time::Duration;

use adversary::*;
use common::*;
use nix::sys::signal::Signal;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Pid {
    pid: u32,
}

/// Clients that connect and are killed before the daemon answers (the daemon is stopped
/// meanwhile): it answers into closed connections, logs the failures without a process
/// name (their pids may already be someone else's), keeps serving and leaks nothing.
#[test]
fn peers_that_die_before_their_answer_are_survived() {
    let env = TestEnv::new();
    let mut daemon = env.serve(&env.config(OPEN_HTTP));
    let socket = env.socket("http");
    let baseline = daemon.fd_count();

    daemon.signal(Signal::SIGSTOP);
    let dead: Vec<u32> = (0..10)
        .map(|_| {
            let outcome =
                hostile(&env, WWW_DATA, &["die".as_ref(), socket.as_os_str()]).finish(EXIT_TIMEOUT);
            assert_eq!(
                outcome.code, None,
                "the client must die by SIGKILL\n{outcome}"
            );
            last_json::<Pid>(&outcome).pid
        })
        .collect();
    // A poll(2) interrupted by SIGSTOP/SIGCONT is restarted (restart_syscall is allowed).
    daemon.signal(Signal::SIGCONT);

    env.probe(WWW_DATA, &socket).assert_granted(2);
    assert!(daemon.is_running(), "{}", daemon.report());
    daemon.wait_fd_count(baseline);
    for pid in dead {
        let line = daemon.wait_event("grant", &[("pid", &pid.to_string())]);
        line.assert_fields(&[("comm_verified", "no"), ("comm", "-"), ("result", "failed")]);
        assert_eq!(line.format_errors(), Vec::<String>::new(), "{}", line.line);
    }
}

/// A peer that connects and dies, and whose pid is then given to another process before
/// the daemon gets to it: the audit line must not name the newcomer. SO_PEERPIDFD pins the
/// connecting process; /proc/PID/comm is trusted only while that pidfd shows it alive.
#[test]
fn a_reused_pid_is_not_reported_as_the_peer() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(OPEN_HTTP));
    let socket = env.socket("http");

    daemon.signal(Signal::SIGSTOP);
    let outcome =
        hostile(&env, WWW_DATA, &["die".as_ref(), socket.as_os_str()]).finish(EXIT_TIMEOUT);
    let pid = last_json::<Pid>(&outcome).pid;
    // The client is reaped; hand its pid to an imposter (`sleep`) through ns_last_pid,
    // retrying when another test's process takes the pid first.
    let imposter = (0..200)
        .find_map(|_| {
            fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string())
                .expect("write /proc/sys/kernel/ns_last_pid (needs root)");
            let mut cmd = Command::new("sleep");
            cmd.arg("60");
            let proc = Proc::spawn(cmd, "imposter");
            (proc.pid() == pid).then_some(proc)
        })
        .unwrap_or_else(|| panic!("could not start a process with pid {pid}"));
    // (The name changes at exec, a moment after spawn returns.)
    let comm = || fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || comm() == "sleep\n"),
        "pid {pid} is {:?}, not the imposter",
        comm()
    );
    daemon.signal(Signal::SIGCONT);

    let line = daemon.wait_event("grant", &[("pid", &pid.to_string())]);
    assert_ne!(line.get("comm"), Some("sleep"), "{}", line.line);
    line.assert_fields(&[("comm_verified", "no"), ("comm", "-")]);
    drop(imposter);
}

/// A process that is root in a user namespace of its own is, to the daemon, the uid it has
/// outside: www-data is granted as uid 33, nobody is denied as uid 65534 (not as root).
#[test]
fn peers_in_another_user_namespace_are_judged_by_their_real_ids() {
    #[derive(Debug, Deserialize)]
    struct Probe {
        pid: u32,
        uid: u32,
        granted: bool,
    }
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(OPEN_HTTP));
    let socket = env.socket("http");
    let in_userns = |user: User| -> Probe {
        let inner = hostile_command(&env, user, &["probe".as_ref(), socket.as_os_str()]);
        let mut cmd = Command::new("unshare");
        cmd.args(["--user", "--map-root-user", "--"])
            .arg(inner.get_program())
            .args(inner.get_args())
            .current_dir(env.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin");
        user.apply(&mut cmd);
        let outcome = Proc::spawn(cmd, "unshare --user").finish(EXIT_TIMEOUT);
        outcome.assert_success();
        last_json(&outcome)
    };

    let www = in_userns(WWW_DATA);
    assert_eq!(www.uid, 0, "the client runs as root inside its namespace");
    assert!(www.granted, "{www:?}");
    daemon
        .wait_event("grant", &[("pid", &www.pid.to_string())])
        .assert_fields(&[("uid", "33"), ("gid", "33"), ("user", "www-data")]);

    let nobody = in_userns(NOBODY);
    assert_eq!(nobody.uid, 0);
    assert!(!nobody.granted, "{nobody:?}");
    daemon
        .wait_event("deny", &[("pid", &nobody.pid.to_string())])
        .assert_fields(&[("uid", "65534"), ("user", "nobody")]);
}

/// A uid without a passwd entry is decided by its ids like any other and logged as
/// `user=-` (the lookup runs inside the sandbox, on /etc/passwd only).
#[test]
fn a_peer_without_a_passwd_entry_is_decided_by_its_ids() {
    const MEMBER: User = User {
        name: "uid 4242",
        uid: 4242,
        gid: 4242,
        groups: &[4242, 33],
    };
    const STRANGER: User = User {
        name: "uid 4243",
        uid: 4243,
        gid: 4243,
        groups: &[4243],
    };
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(OPEN_HTTP));
    let socket = env.socket("http");

    let member = env.probe(MEMBER, &socket);
    member.assert_granted(2);
    daemon
        .wait_event("grant", &[("pid", &member.pid.to_string())])
        .assert_fields(&[("uid", "4242"), ("user", "-"), ("comm_verified", "yes")]);
    let stranger = env.probe(STRANGER, &socket);
    stranger.assert_denied();
    daemon
        .wait_event("deny", &[("pid", &stranger.pid.to_string())])
        .assert_fields(&[("uid", "4243"), ("user", "-")]);
}

/// Process names are the peer's choice: overlong (the kernel keeps 15 bytes), escape
/// sequences, quotes and backslashes, `key=value` look-alikes, invalid UTF-8, DEL. Each
/// reaches the log as one well-formed field whose unescaped bytes are exactly the name the
/// kernel kept.
#[test]
fn hostile_process_names_are_logged_exactly_and_harmlessly() {
    #[derive(Debug, Deserialize)]
    struct Named {
        pid: u32,
        comm_hex: String,
        granted: bool,
    }
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(OPEN_HTTP));
    let socket = env.socket("http");
    let names: [&[u8]; 6] = [
        &[b'A'; 64],
        b"\x1b[2J\x1b]0;pwn\x07",
        b"a\"b\\c=d e",
        b"\xff\xfe\x80 not utf8",
        b"\x01\x02\x7f\x09tab",
        b"x event=grant",
    ];
    for name in names {
        let hexname: String = name.iter().map(|b| format!("{b:02x}")).collect();
        let outcome = hostile(
            &env,
            WWW_DATA,
            &["name", hexname.as_str(), socket.to_str().unwrap()],
        )
        .finish(EXIT_TIMEOUT);
        outcome.assert_success();
        let named: Named = last_json(&outcome);
        assert!(named.granted, "{named:?}");
        let kept = &name[..name.len().min(15)];
        assert_eq!(
            named.comm_hex,
            kept.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );

        let line = daemon.wait_event("grant", &[("pid", &named.pid.to_string())]);
        assert_eq!(line.format_errors(), Vec::<String>::new(), "{}", line.line);
        assert_eq!(line.get("comm_verified"), Some("yes"), "{}", line.line);
        assert_eq!(unescape(line.get("comm").unwrap()), kept, "{}", line.line);
        assert_eq!(line.kind(), "grant", "{}", line.line);
    }
    // One line per grant: nothing a name holds split a line.
    assert_eq!(
        daemon.events_of("grant").len(),
        names.len(),
        "{}",
        daemon.report()
    );
}

/// The bytes of a logged value (quoted values keep `\xHH` escapes in [`Event::get`]).
fn unescape(value: &str) -> Vec<u8> {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            out.push(u8::from_str_radix(&value[i + 2..i + 4], 16).unwrap());
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}
