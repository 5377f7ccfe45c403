//! Reload refusals: a change that needs a privilege the daemon gave up (a new binding, a new
//! address, another group, a mark), a file that is invalid, that anyone but root could change
//! or that the run user cannot read, and a step that fails half-way refuse the whole reload.
//! Nothing changes: the old rules stay in force on the same sockets, no socket file appears,
//! and the log says why, one line per refused change, each ending in "restart to apply". What
//! is applied is in tests/reload.rs; how a failed reload leaves each socket's options, in
//! tests/reload_undo.rs.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::reload::{mode_of, outcome, readable_config, refused, reload};
use common::sockopts::{listen_backlog, read_back};
use common::*;

/// Asserts that `http` still serves as [`HTTP_FOR_ANYONE`] says, on the sockets `granted`:
/// www-data gets them, daemon (uid 1) is denied.
fn old_rules_in_force(env: &TestEnv, granted: &[u64]) {
    let probe = env.probe(WWW_DATA, &env.socket("http"));
    assert_eq!(probe.assert_granted(1).inodes(), granted);
    env.probe(DAEMON, &env.socket("http")).assert_denied();
}

#[test]
fn a_change_that_needs_a_privilege_refuses_the_whole_reload() {
    let env = TestEnv::new();
    let config = readable_config(&env, HTTP_FOR_ANYONE);
    let daemon = env.serve(&config);
    let granted = env
        .probe(WWW_DATA, &env.socket("http"))
        .assert_granted(1)
        .inodes();
    let files = env.socket_files();

    // A new binding and a mark beside changes that alone would be applied.
    readable_config(
        &env,
        &format!(
            "{DNS_BINDING}{HTTP_FOR_ANYONE}allow_users = [\"daemon\"]\nbacklog = 8\nmark = 7\n"
        ),
    );
    let lines = reload(&daemon);
    assert_eq!(
        refused(&lines),
        [
            (
                "binding `dns`: added".to_owned(),
                "a new binding binds new sockets, which needs CAP_NET_BIND_SERVICE: restart to apply"
                    .to_owned()
            ),
            (
                "binding `http`: mark".to_owned(),
                "setting SO_MARK needs CAP_NET_ADMIN: restart to apply".to_owned()
            ),
        ]
    );
    outcome(&lines).assert_fields(&[
        ("result", "refused"),
        ("refused", "2"),
        (
            "reason",
            "2 changes need a restart: nothing was changed; restart to apply",
        ),
    ]);
    old_rules_in_force(&env, &granted);
    assert_eq!(listen_backlog(80), 1024);
    assert_eq!(env.socket_files(), files, "no socket file for `dns`");

    // Another address and another group: both need what the daemon gave up.
    let moved = HTTP_FOR_ANYONE
        .replace("127.0.0.1:80", "127.0.0.1:81")
        .replace("www-data", "nogroup");
    readable_config(&env, &format!("{moved}allow_users = [\"daemon\"]\n"));
    let lines = reload(&daemon);
    let what: Vec<String> = refused(&lines).into_iter().map(|(what, _)| what).collect();
    assert_eq!(what, ["binding `http`: listen", "binding `http`: group"]);
    assert!(
        refused(&lines)
            .iter()
            .all(|(_, why)| why.ends_with(": restart to apply"))
    );
    old_rules_in_force(&env, &granted);
    assert_eq!(mode_of(&env.socket("http")), 0o666);
}

#[test]
fn an_invalid_file_is_refused_and_the_old_configuration_keeps_serving() {
    let env = TestEnv::new();
    let config = readable_config(&env, HTTP_FOR_ANYONE);
    let daemon = env.serve(&config);
    let granted = env
        .probe(WWW_DATA, &env.socket("http"))
        .assert_granted(1)
        .inodes();
    let file = config.display().to_string();
    for (text, needles) in [
        (
            "[binding.http\nlisten = [\"127.0.0.1:80\"]\n",
            vec![
                format!("invalid configuration file {file}: "),
                "line".into(),
            ],
        ),
        (
            &*format!("{HTTP_FOR_ANYONE}allow_users = [\"daemon\"]\ntypo = 1\n"),
            vec![
                format!("invalid configuration file {file}: binding `http`: "),
                "unknown field `typo`".into(),
            ],
        ),
        (
            &*format!("{HTTP_FOR_ANYONE}allow_users = [\"no-such-user-pb\"]\n"),
            vec![
                format!("invalid configuration ({file}): "),
                "binding `http`: field `allow_users`".into(),
            ],
        ),
    ] {
        readable_config(&env, text);
        let lines = reload(&daemon);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = outcome(&lines);
        line.assert_fields(&[("signal", "SIGHUP"), ("result", "refused")]);
        let error = line
            .get("error")
            .unwrap_or_else(|| panic!("{:?}", line.line));
        for needle in &needles {
            assert!(error.contains(needle.as_str()), "{needle:?} in {error:?}");
        }
        old_rules_in_force(&env, &granted);
    }
    // A file that anyone but root could change is refused as at start-up.
    readable_config(
        &env,
        &format!("{HTTP_FOR_ANYONE}allow_users = [\"daemon\"]\n"),
    );
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).unwrap();
    let lines = reload(&daemon);
    let error = outcome(&lines).get("error").unwrap();
    assert!(
        error.starts_with(&format!(
            "refusing configuration file {file}: it is writable by its group or by others"
        )),
        "{error}"
    );
    assert!(error.contains(&format!("`chmod go-w {file}`")), "{error}");
    old_rules_in_force(&env, &granted);
    // Fixed again: nothing differs from what is served.
    readable_config(&env, HTTP_FOR_ANYONE);
    outcome(&reload(&daemon)).assert_fields(&[("result", "unchanged")]);
}

#[test]
fn a_file_the_run_user_cannot_read_is_refused_with_the_fix() {
    let env = TestEnv::new();
    // TestEnv::config writes mode 0600, owned by root: the daemon read it as root at start.
    let config = env.config(HTTP_FOR_ANYONE);
    let daemon = env.serve(&config);
    let granted = env
        .probe(WWW_DATA, &env.socket("http"))
        .assert_granted(1)
        .inodes();
    env.config(&format!("{HTTP_FOR_ANYONE}allow_users = [\"daemon\"]\n"));
    let lines = reload(&daemon);
    let line = outcome(&lines);
    line.assert_fields(&[("result", "refused")]);
    let error = line.get("error").unwrap();
    let file = config.display();
    for needle in [
        format!("cannot read configuration file {file}"),
        "the daemon reads it again as its user `nobody`".into(),
        format!("`chgrp nogroup {file} && chmod 0640 {file}`"),
        format!("`chmod 0644 {file}`"),
    ] {
        assert!(error.contains(&needle), "{needle:?} in {error:?}");
    }
    old_rules_in_force(&env, &granted);
}

#[test]
fn a_step_that_fails_puts_back_what_was_applied_and_refuses_the_reload() {
    let env = TestEnv::new();
    let config = readable_config(&env, API_AND_WEB);
    let daemon = env.serve(&config);
    // `api`'s backlog and blocking mode can be changed, and come first (bindings are in
    // name order); `web`'s mode cannot, once its socket file is gone.
    let changed = r#"
[binding.api]
listen = ["127.0.0.1:8080"]
group = "www-data"
backlog = 7
nonblocking = true

[binding.web]
listen = ["127.0.0.1:80"]
group = "www-data"
mode = "0666"
"#;
    readable_config(&env, changed);
    std::fs::remove_file(env.socket("web")).unwrap();
    let lines = reload(&daemon);
    assert_eq!(lines.len(), 2, "{lines:?}");
    lines[0].assert_fields(&[("result", "refused"), ("change", "binding `web`: mode")]);
    let error = lines[0].get("error").unwrap();
    let web = env.socket("web");
    assert!(
        error.contains(&format!("{}", web.display())) && error.contains("No such file"),
        "{error}"
    );
    outcome(&lines).assert_fields(&[
        ("result", "refused"),
        (
            "reason",
            "binding `web`: mode could not be applied, and the 2 changes applied before it were put back: nothing was changed",
        ),
    ]);
    // `api` is as it was: the backlog and the blocking mode were put back.
    assert_eq!(listen_backlog(8080), 1024);
    assert_eq!(read_back(&env, "api", &[])["fds"][0]["nonblocking"], false);
    // Nor did the refused reload make a socket file anew where the removed one was.
    assert!(!Path::new(&web).exists());
}

/// Removes a file when dropped, so that a failing test leaves nothing in `/`.
struct Removed(std::path::PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A configuration right in `/`: the sandbox's read rule is on the file itself, not on `/`
/// (which would open every file the run user may read to the sandboxed daemon). An edit in
/// place reloads; a file renamed over it is refused with why and the fix.
#[test]
fn a_file_in_the_root_directory_is_read_again_only_as_that_very_file() {
    let env = TestEnv::new();
    let root_file = Removed(format!("/portbinder-test-{}.toml", std::process::id()).into());
    let write = |bindings: &str| {
        let text = std::fs::read_to_string(readable_config(&env, bindings)).unwrap();
        std::fs::write(&root_file.0, text).unwrap();
        std::fs::set_permissions(&root_file.0, std::fs::Permissions::from_mode(0o644)).unwrap();
    };
    write(HTTP_FOR_ANYONE);
    let daemon = env.serve(&root_file.0);
    env.probe(DAEMON, &env.socket("http")).assert_denied();

    // In place: the same inode.
    write(&format!("{HTTP_FOR_ANYONE}allow_users = [\"daemon\"]\n"));
    outcome(&reload(&daemon)).assert_fields(&[("result", "applied")]);
    env.probe(DAEMON, &env.socket("http")).assert_granted(1);

    // Renamed over it: a new inode, which the rule does not cover.
    let draft = Removed(format!("/portbinder-test-{}.new", std::process::id()).into());
    std::fs::copy(&root_file.0, &draft.0).unwrap();
    std::fs::rename(&draft.0, &root_file.0).unwrap();
    let lines = reload(&daemon);
    let error = outcome(&lines).get("error").unwrap_or_default().to_owned();
    outcome(&lines).assert_fields(&[("result", "refused")]);
    for needle in [
        "the file is in /, so the sandbox lets the daemon read only the very file it started with",
        "edit it in place",
        "move it to /etc/portbinder/ and restart",
    ] {
        assert!(error.contains(needle), "{needle:?} in {error:?}");
    }
    env.probe(DAEMON, &env.socket("http")).assert_granted(1);
}
