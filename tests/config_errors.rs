//! Configuration and set-up errors: exit codes 2/3/4, `portbinder: error:` messages that name
//! the file, binding, field and value, and no socket file left behind.

mod common;

use std::fs;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use common::*;

/// Both `check` and `serve` reject `config` with exit 3 and a message naming `needles`
/// (the file's path is always required), and nothing is created in the socket directory.
fn assert_config_error(env: &TestEnv, config: &Path, needles: &[&str]) {
    let path = config.to_str().unwrap();
    let mut all = vec![path];
    all.extend_from_slice(needles);
    for outcome in [run_check(&["--config", path]), serve_expect_failure(config)] {
        outcome.assert_error(3, &all);
        assert!(outcome.stdout.is_empty(), "nothing on stdout:\n{outcome}");
    }
    env.assert_no_socket_files();
}

#[test]
fn unknown_top_level_key() {
    let env = TestEnv::new();
    let config = env.write_config(&format!(
        "{}colour = \"red\"\n{HTTP_BINDING}",
        env.globals()
    ));
    assert_config_error(&env, &config, &["colour"]);
}

#[test]
fn unknown_key_in_binding() {
    let env = TestEnv::new();
    let config = env.config(&http_binding(r#"allow_user = ["nobody"]"#));
    assert_config_error(&env, &config, &["http", "allow_user"]);
}

#[test]
fn bad_binding_name() {
    let env = TestEnv::new();
    let config = env.config(
        r#"
[binding."Web Site"]
listen = ["127.0.0.1:80"]
group = "www-data"
"#,
    );
    assert_config_error(&env, &config, &["Web Site"]);
}

#[test]
fn bad_address() {
    let env = TestEnv::new();
    let config = env.config(
        r#"
[binding.http]
listen = ["127.0.0.1:80", "127.0.0.300:80"]
group = "www-data"
"#,
    );
    assert_config_error(&env, &config, &["http", "listen", "127.0.0.300:80"]);
}

#[test]
fn port_zero() {
    let env = TestEnv::new();
    let config = env.config(
        r#"
[binding.http]
listen = ["0.0.0.0:0"]
group = "www-data"
"#,
    );
    assert_config_error(&env, &config, &["http", "listen", "0.0.0.0:0"]);
}

#[test]
fn unknown_run_user() {
    let env = TestEnv::new();
    let config = env.write_config(&format!(
        "user = \"pb-no-such-user\"\nsocket_dir = \"{}\"\n{HTTP_BINDING}",
        env.socket_dir().display()
    ));
    assert_config_error(&env, &config, &["user", "pb-no-such-user"]);
}

#[test]
fn unknown_group() {
    let env = TestEnv::new();
    let config = env.config(
        r#"
[binding.http]
listen = ["127.0.0.1:80"]
group = "pb-no-such-group"
"#,
    );
    assert_config_error(&env, &config, &["http", "group", "pb-no-such-group"]);
}

#[test]
fn unknown_allowed_user() {
    let env = TestEnv::new();
    let config = env.config(&http_binding(
        r#"allow_users = ["www-data", "pb-no-such-user"]"#,
    ));
    assert_config_error(&env, &config, &["http", "allow_users", "pb-no-such-user"]);
}

#[test]
fn duplicate_address_across_bindings() {
    let env = TestEnv::new();
    // The same TCP address, once with the optional tcp:// prefix.
    let config = env.config(
        r#"
[binding.web]
listen = ["127.0.0.1:80"]
group = "www-data"

[binding.api]
listen = ["[::1]:80", "tcp://127.0.0.1:80"]
group = "www-data"
"#,
    );
    assert_config_error(&env, &config, &["127.0.0.1:80", "web", "api"]);
}

#[test]
fn no_bindings() {
    let env = TestEnv::new();
    let config = env.write_config(&env.globals());
    assert_config_error(&env, &config, &["binding"]);
}

#[test]
fn missing_config_file() {
    let env = TestEnv::new();
    let config = env.path().join("absent.toml");
    assert_config_error(
        &env,
        &config,
        &["cannot read configuration file", "No such file"],
    );
}

#[test]
fn toml_syntax_error_names_the_line() {
    let env = TestEnv::new();
    let config = env.config("[binding.http]\nlisten = [\"127.0.0.1:80\"\ngroup = \"www-data\"\n");
    assert_config_error(&env, &config, &["TOML parse error", "line"]);
}

#[test]
fn unknown_allowed_group_and_bad_backlog() {
    let env = TestEnv::new();
    let config = env.config(&http_binding(
        "allow_groups = [\"no-such-group-pb\"]\nbacklog = 0",
    ));
    assert_config_error(
        &env,
        &config,
        &[
            "binding `http`: field `allow_groups`: no such group `no-such-group-pb`",
            "binding `http`: field `backlog`: 0 is out of range",
        ],
    );
}

#[test]
fn malformed_and_repeated_bind_flags() {
    for (flags, needle) in [
        (
            &["--bind", "http", "--group", "www-data"][..],
            "--bind `http`: write NAME=ADDR",
        ),
        (
            &[
                "--bind",
                "a=127.0.0.1:80",
                "--bind",
                "a=127.0.0.1:81",
                "--group",
                "www-data",
            ][..],
            "binding `a` is given twice",
        ),
    ] {
        let mut args = vec!["--user", "nobody"];
        args.extend_from_slice(flags);
        run_check(&args).assert_error(3, &["command line", needle]);
    }
}

#[test]
fn bad_mode() {
    let env = TestEnv::new();
    let config = env.config(&http_binding(r#"mode = "0698""#));
    assert_config_error(&env, &config, &["http", "mode", "0698"]);
}

#[test]
fn run_user_root_is_refused() {
    let env = TestEnv::new();
    let config = env.write_config(&format!(
        "user = \"root\"\nsocket_dir = \"{}\"\n{HTTP_BINDING}",
        env.socket_dir().display()
    ));
    assert_config_error(&env, &config, &["user", "root"]);
}

#[test]
fn bind_together_with_config_is_a_usage_error() {
    let env = TestEnv::new();
    let config = env.config(HTTP_BINDING);
    let outcome = run_serve_expect_failure(&[
        "--config".as_ref(),
        config.as_os_str(),
        "--bind".as_ref(),
        "http=127.0.0.1:80".as_ref(),
        "--group".as_ref(),
        "www-data".as_ref(),
    ]);
    assert_eq!(outcome.code, Some(2), "{outcome}");
    assert!(
        outcome.stderr.contains("--bind") && outcome.stderr.contains("--config"),
        "{outcome}"
    );
    env.assert_no_socket_files();
}

#[test]
fn check_accepts_a_valid_file_and_creates_nothing() {
    let env = TestEnv::new();
    let config = env.config(
        r#"
[binding.http]
listen = ["0.0.0.0:80", "[::]:80"]
backlog = 128
group = "www-data"
mode = "0660"
allow_users = ["nobody", "1"]
allow_groups = ["nogroup", "33"]

[binding.dns]
listen = ["udp://127.0.0.1:53", "tcp://127.0.0.1:53"]
group = "33"
"#,
    );
    let outcome = run_check(&["--config".as_ref(), config.as_os_str()]);
    outcome.assert_success();
    assert_eq!(
        outcome.stdout,
        format!("portbinder: {}: ok (2 bindings)\n", config.display()),
        "{outcome}"
    );
    assert!(
        !env.socket_dir().exists(),
        "check must not create the socket directory"
    );
}

// ---- set-up errors (exit 4) -----------------------------------------------------------------

/// `serve` fails with exit 4 naming `needles`, and leaves no socket file.
fn assert_setup_error(env: &TestEnv, config: &Path, needles: &[&str]) {
    serve_expect_failure(config).assert_error(4, needles);
    env.assert_no_socket_files();
}

#[test]
fn port_already_in_use() {
    let env = TestEnv::new();
    // The wildcard: bind(2) of 127.0.0.1:443 collides with it, and it is not a socket on
    // exactly the binding's address, which would be recovered from this process instead
    // (tests/recovery.rs).
    let _taken = TcpListener::bind("0.0.0.0:443").unwrap();
    // The first address binds fine; the second one fails, and nothing may be left of the first.
    let config = env.config(
        r#"
[binding.http]
listen = ["127.0.0.1:80", "127.0.0.1:443"]
group = "www-data"
"#,
    );
    assert_setup_error(&env, &config, &["127.0.0.1:443"]);
    // The failed daemon released 127.0.0.1:80.
    TcpListener::bind("127.0.0.1:80").expect("127.0.0.1:80 must be free again");
}

#[test]
fn udp_port_already_in_use() {
    let env = TestEnv::new();
    // The wildcard, as above: a collision, not a socket to recover.
    let _taken = UdpSocket::bind("0.0.0.0:53").unwrap();
    let config = env.config(DNS_BINDING);
    assert_setup_error(&env, &config, &["127.0.0.1:53"]);
}

#[test]
fn socket_dir_symlink_is_refused() {
    let env = TestEnv::new();
    let target = env.path().join("elsewhere");
    fs::create_dir(&target).unwrap();
    std::os::unix::fs::chown(&target, Some(65534), Some(65534)).unwrap();
    symlink(&target, env.socket_dir()).unwrap();
    let config = env.config(HTTP_BINDING);
    assert_setup_error(
        &env,
        &config,
        &[env.socket_dir().to_str().unwrap(), "symbolic link"],
    );
    assert_eq!(fs::read_dir(&target).unwrap().count(), 0);
}

#[test]
fn socket_dir_writable_by_others_is_refused() {
    let env = TestEnv::new();
    env.create_socket_dir_for_nobody();
    fs::set_permissions(env.socket_dir(), fs::Permissions::from_mode(0o777)).unwrap();
    let config = env.config(HTTP_BINDING);
    assert_setup_error(
        &env,
        &config,
        &[
            env.socket_dir().to_str().unwrap(),
            "mode 0777",
            "writable by group or others",
        ],
    );
}

#[test]
fn socket_dir_owned_by_another_user_is_refused() {
    let env = TestEnv::new();
    fs::create_dir(env.socket_dir()).unwrap();
    fs::set_permissions(env.socket_dir(), fs::Permissions::from_mode(0o755)).unwrap();
    // Owned by root, not by the run user nobody.
    let config = env.config(HTTP_BINDING);
    assert_setup_error(
        &env,
        &config,
        &[
            env.socket_dir().to_str().unwrap(),
            "owned by uid 0",
            "run user (uid 65534)",
        ],
    );
}
