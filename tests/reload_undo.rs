//! How a refused reload leaves the sockets' options: each socket exactly as the kernel had it
//! before the reload (an option a holder set stays, and none whose default follows a sysctl
//! is set by a reload that did not succeed), and a buffer beyond what the kernel grants
//! without CAP_NET_ADMIN refused before anything changes, also where /proc/sys is hidden.

mod common;

use common::reload::{outcome, readable_config, refused, reload};
use common::sockopts::{listen_backlog, read_back, sysctl};
use common::*;
use serde_json::Value;

/// What a client reads back of the first socket of `binding`.
fn first_socket(env: &TestEnv, binding: &str) -> Value {
    read_back(env, binding, &[])["fds"][0].clone()
}

/// A reload whose step fails on `web` after `api`'s options were changed puts `api`'s socket
/// back as it was, not as the old file says: a keepalive timing the file adds (whose default is
/// the kernel's sysctl, so the old file has no value to put back) is not left behind, and a
/// TCP_DEFER_ACCEPT that a holder set itself is kept.
#[test]
fn a_failed_step_leaves_every_socket_as_it_was_not_as_the_old_file_says() {
    let env = TestEnv::new();
    let config = readable_config(&env, API_AND_WEB);
    let daemon = env.serve(&config);
    let set: Value = env
        .client(
            WWW_DATA,
            &[
                "set-option".as_ref(),
                env.socket("api").as_os_str(),
                "defer_accept".as_ref(),
                "5".as_ref(),
            ],
        )
        .finish(EXIT_TIMEOUT)
        .json();
    assert_ne!(set["value"], 0, "{set}");
    let before = first_socket(&env, "api");
    assert_eq!(before["defer_accept"], set["value"], "{before}");
    assert_ne!(before["keepalive_idle"], 30, "{before}");

    readable_config(
        &env,
        &API_AND_WEB
            .replace(
                "listen = [\"127.0.0.1:8080\"]\n",
                "listen = [\"127.0.0.1:8080\"]\nkeepalive = true\nkeepalive_idle = 30\n",
            )
            .replace(
                "listen = [\"127.0.0.1:80\"]\n",
                "listen = [\"127.0.0.1:80\"]\nmode = \"0666\"\n",
            ),
    );
    std::fs::remove_file(env.socket("web")).unwrap();
    let lines = reload(&daemon);
    assert_eq!(
        first_socket(&env, "api"),
        before,
        "api's socket changed by a refused reload: {lines:#?}"
    );
    lines[0].assert_fields(&[("result", "refused"), ("change", "binding `web`: mode")]);
    outcome(&lines).assert_fields(&[("result", "refused")]);
}

/// A reload that adds a receive buffer beyond net.core.rmem_max, to a daemon started as the
/// shipped unit starts it (its user, with CAP_NET_BIND_SERVICE and CAP_CHOWN only: no
/// SO_RCVBUFFORCE), through `wrapper`: refused before anything changes, naming the capability,
/// and the socket keeps its buffer (and with it the kernel's autotuning, which SO_RCVBUF turns
/// off for good).
fn a_buffer_beyond_the_maximum_is_refused_and_the_socket_keeps_its_own(wrapper: &[&str]) {
    let env = TestEnv::new();
    let (cmd, _) = env.serve_as_nobody_with_caps_under(wrapper, UNIT_CAPS, HTTP_BINDING);
    let daemon = Daemon::spawn(cmd);
    let before = first_socket(&env, "http");
    let max = sysctl("net.core.rmem_max");
    let bytes = (2 * max).min(1_073_741_823);
    readable_config(
        &env,
        &http_binding(&format!("backlog = 8\nreceive_buffer = {bytes}")),
    );
    let lines = reload(&daemon);
    assert_eq!(
        first_socket(&env, "http"),
        before,
        "the socket changed by a refused reload: {lines:#?}"
    );
    assert_eq!(listen_backlog(80), 1024, "{lines:#?}");
    let refused = refused(&lines);
    assert_eq!(refused.len(), 1, "{lines:#?}");
    let (what, why) = &refused[0];
    assert_eq!(what, "binding `http`: receive_buffer");
    for needle in [
        format!("{bytes} bytes is beyond net.core.rmem_max ({max} bytes)"),
        "CAP_NET_ADMIN".to_owned(),
    ] {
        assert!(why.contains(&needle), "{needle:?} in {why:?}");
    }
    assert!(why.ends_with(": restart to apply"), "{why}");
    outcome(&lines).assert_fields(&[("result", "refused"), ("refused", "1")]);
}

#[test]
fn a_buffer_beyond_the_maximum_is_refused_with_proc_sys_readable() {
    a_buffer_beyond_the_maximum_is_refused_and_the_socket_keeps_its_own(&[]);
}

#[test]
fn a_buffer_beyond_the_maximum_is_refused_with_proc_sys_hidden_as_under_the_unit() {
    a_buffer_beyond_the_maximum_is_refused_and_the_socket_keeps_its_own(HIDE_PROC_SYS);
}

/// `http` for www-data and root (a privileged holder, which can change what the daemon
/// cannot change back), with `options`.
fn http_with_a_privileged_holder(options: &str) -> String {
    http_binding(&format!("allow_users = [\"root\"]\n{options}"))
}

/// Sets option `name` of `binding`'s first socket to `value` as root, as a privileged holder.
fn set_as_root(env: &TestEnv, binding: &str, name: &str, value: &str) -> Value {
    let socket = env.socket(binding);
    let args = ["set-option", socket.to_str().unwrap(), name, value];
    env.client(ROOT, &args).finish(EXIT_TIMEOUT).json()
}

/// A reload that changes `keepalive` while a privileged holder has changed what the daemon
/// could not set back without a capability it gave up: refused before anything changes, with
/// `needle` in the reason, and the socket exactly as it was.
fn refused_over_what_a_privileged_holder_changed(
    env: &TestEnv,
    daemon: &Daemon,
    options: &str,
    needle: &str,
) {
    let before = first_socket(env, "http");
    readable_config(
        env,
        &http_with_a_privileged_holder(&format!("{options}\nkeepalive = true")),
    );
    let lines = reload(daemon);
    assert_eq!(
        first_socket(env, "http"),
        before,
        "the socket changed by a refused reload: {lines:#?}"
    );
    outcome(&lines).assert_fields(&[("result", "refused")]);
    // The failed change's line comes before the outcome.
    let error = lines[0].get("error").unwrap_or_default().to_owned();
    for needle in [needle, "restart portbinder to apply"] {
        assert!(error.contains(needle), "{needle:?} in {lines:#?}");
    }
}

/// A device is taken off a socket only with CAP_NET_RAW, so a reload must not put one back
/// on a socket a privileged holder took it off: a later failure could not undo it.
#[test]
fn a_device_a_privileged_holder_took_off_is_not_put_back_by_a_reload() {
    let env = TestEnv::new();
    let options = "bind_to_device = \"lo\"";
    let daemon = env.serve(&readable_config(
        &env,
        &http_with_a_privileged_holder(options),
    ));
    assert_eq!(set_as_root(&env, "http", "bind_to_device", "")["value"], "");
    refused_over_what_a_privileged_holder_changed(
        &env,
        &daemon,
        options,
        "the socket is bound to no device now (a privileged holder changed it)",
    );
}

/// A buffer beyond the sysctl maximum, set with SO_RCVBUFFORCE at start as root and changed
/// since by a holder, can be set again only with CAP_NET_ADMIN: a reload that would set it
/// again (with a keepalive change) is refused before it changes anything, rather than capped
/// after its other options were set.
#[test]
fn a_forced_buffer_a_holder_changed_is_refused_before_anything_changes() {
    let env = TestEnv::new();
    let bytes = (2 * sysctl("net.core.rmem_max")).min(1_073_741_823);
    let options = format!("receive_buffer = {bytes}");
    let daemon = env.serve(&readable_config(
        &env,
        &http_with_a_privileged_holder(&options),
    ));
    assert_eq!(first_socket(&env, "http")["receive_buffer"], 2 * bytes);
    assert_eq!(
        set_as_root(&env, "http", "receive_buffer", "4096")["value"],
        8192
    );
    refused_over_what_a_privileged_holder_changed(
        &env,
        &daemon,
        &options,
        "the socket's buffer is 4096 bytes now (a holder changed it)",
    );
}
