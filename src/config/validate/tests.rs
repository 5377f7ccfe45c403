use super::*;
use crate::config::SocketOptions;

fn check(text: &str) -> Result<Config, ConfigError> {
    let raw = super::super::parse(text, std::path::Path::new("t.toml"))?;
    validate(raw, Origin::File("t.toml".into()))
}

fn problems(text: &str) -> String {
    match check(text) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted: {text}"),
    }
}

const GOOD: &str = r#"
user = "nobody"
socket_dir = "/run/pb"
[binding.http]
listen = ["0.0.0.0:80", "[::]:80"]
group = "root"
mode = "0640"
allow_users = ["0"]
[binding.dns]
listen = ["udp://127.0.0.1:53"]
group = "0"
mode = 0o600
"#;

#[test]
fn accepts_a_full_config() {
    let config = check(GOOD).unwrap();
    assert_eq!(config.user.name, "nobody");
    assert_eq!(config.log, LogTarget::Syslog);
    assert_eq!(config.facility, Facility::Authpriv);
    let names: Vec<_> = config.bindings.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["dns", "http"]);
    let http = &config.bindings[1];
    assert_eq!(http.listen.len(), 2);
    assert_eq!(http.listen[1].to_string(), "tcp://[::]:80");
    assert_eq!((http.mode, http.backlog), (0o640, DEFAULT_BACKLOG));
    assert_eq!(config.bindings[0].mode, 0o600);
    assert_eq!(
        http.socket_path(&config.socket_dir),
        PathBuf::from("/run/pb/http.sock")
    );
}

#[test]
fn names_binding_and_field_of_each_problem() {
    let cases = [
        (
            "user = \"root\"\n[binding.a]\nlisten=[\"0.0.0.0:80\"]\ngroup=\"root\"",
            "field `user`: `root` is uid 0",
        ),
        (
            "user = \"nobody\"\n[binding.A]\nlisten=[\"0.0.0.0:80\"]\ngroup=\"root\"",
            "binding `A`: the name must be",
        ),
        (
            "user = \"nobody\"\n[binding.a]\nlisten=[\"0.0.0.0:99999\"]\ngroup=\"root\"",
            "binding `a`: field `listen`: `0.0.0.0:99999` is not a listen address",
        ),
        (
            "user = \"nobody\"\n[binding.a]\nlisten=[\"0.0.0.0:0\"]\ngroup=\"root\"",
            "field `listen`: `0.0.0.0:0` has port 0",
        ),
        (
            "user = \"nobody\"\n[binding.a]\nlisten=[]\ngroup=\"root\"",
            "binding `a`: field `listen`: no addresses",
        ),
        (
            "user = \"nobody\"\n[binding.a]\nlisten=[\"0.0.0.0:80\"]\ngroup=\"nosuchgroup-pb\"",
            "binding `a`: field `group`: no such group `nosuchgroup-pb`",
        ),
        (
            "user = \"nobody\"\n[binding.a]\nlisten=[\"0.0.0.0:80\"]\ngroup=\"root\"\nmode=\"0999\"",
            "binding `a`: field `mode`: \"0999\" is not a permission mode",
        ),
        (
            "user = \"nobody\"\n[binding.a]\nlisten=[\"0.0.0.0:80\"]\ngroup=\"root\"\nmode=0o4755",
            "field `mode`: 0o4755",
        ),
        (
            "user = \"nobody\"\n[binding.a]\nlisten=[\"0.0.0.0:80\"]\ngroup=\"root\"\nallow_users=[\"nosuchuser-pb\"]",
            "binding `a`: field `allow_users`: no such user",
        ),
        (
            "user = \"nosuchuser-pb\"\n[binding.a]\nlisten=[\"0.0.0.0:80\"]\ngroup=\"root\"",
            "field `user`: no such user `nosuchuser-pb`",
        ),
        (
            "user = \"nobody\"\nsocket_dir = \"run\"\n[binding.a]\nlisten=[\"0.0.0.0:80\"]\ngroup=\"root\"",
            "field `socket_dir`: `run` is not an absolute path",
        ),
        ("user = \"nobody\"", "no bindings"),
        (
            "user = \"nobody\"\n[binding.a]\nlisten=[\"0.0.0.0:80\"]\ngroup=\"root\"\n[binding.b]\nlisten=[\"127.0.0.1:80\"]\ngroup=\"root\"",
            "binding `b`: field `listen`: tcp://127.0.0.1:80 collides with tcp://0.0.0.0:80 of binding `a`",
        ),
        (
            "user = \"nobody\"\n[binding.a]\nlisten=[\"0.0.0.0:80\", \"tcp://0.0.0.0:80\"]\ngroup=\"root\"",
            "listed twice",
        ),
    ];
    for (text, expected) in cases {
        let message = problems(text);
        assert!(message.contains(expected), "{text}\n=> {message}");
        assert!(
            message.starts_with("invalid configuration (t.toml):"),
            "{message}"
        );
    }
}

#[test]
fn reports_every_problem_at_once() {
    let message = problems(
        "user = \"nobody\"\n[binding.a]\nlisten=[\"x\"]\ngroup=\"nosuchgroup-pb\"\nmode=\"9\"",
    );
    assert_eq!(message.lines().count(), 4, "{message}");
}

#[test]
fn unknown_keys_are_parse_errors() {
    let message = problems(
        "user = \"nobody\"\n[binding.a]\nlisten=[\"0.0.0.0:80\"]\ngroup=\"root\"\nlisen=1",
    );
    assert!(
        message.contains("binding `a`: TOML parse error"),
        "{message}"
    );
    assert!(message.contains("unknown field `lisen`"), "{message}");
    assert!(message.contains("line 5"), "{message}");
    let message = problems("usr = \"x\"");
    assert!(message.contains("unknown field `usr`"), "{message}");
    let message = problems("log = \"file\"");
    assert!(message.contains("unknown variant `file`"), "{message}");
}

#[test]
fn id_ranges_are_accepted_and_every_bad_one_is_reported() {
    let config = check(
        "user = \"nobody\"\n[binding.a]\nlisten=[\"0.0.0.0:80\"]\ngroup=\"root\"\n\
         allow_users=[\"100000-165535\", \"nobody\"]\nallow_groups=[\"100000-165535\"]",
    )
    .unwrap();
    let a = &config.bindings[0];
    assert_eq!(a.allow_users[0].to_string(), "100000-165535");
    assert_eq!(a.allow_users[1].to_string(), "65534");
    // The socket's group comes first, then the ranges.
    assert_eq!(a.allow_groups[0].to_string(), "0");
    assert_eq!(a.allow_groups[1].to_string(), "100000-165535");

    let message = problems(
        "user = \"nobody\"\n[binding.a]\nlisten=[\"0.0.0.0:80\"]\ngroup=\"root\"\n\
         allow_users=[\"0-65535\", \"165535-100000\", \"100000-\"]\n\
         allow_groups=[\"0-99\", \"1-4294967295\"]",
    );
    let expected = [
        "binding `a`: field `allow_users`: `0-65535` contains uid 0 (root)",
        "binding `a`: field `allow_users`: `165535-100000` is backwards",
        "binding `a`: field `allow_users`: `100000-` is not an id range",
        "binding `a`: field `allow_groups`: `0-99` contains gid 0 (root's group)",
        "binding `a`: field `allow_groups`: `1-4294967295`: 4294967295 is not a gid",
    ];
    for line in expected {
        assert!(message.contains(line), "{line}\n=> {message}");
    }
    assert_eq!(message.lines().count(), 1 + expected.len(), "{message}");
}

fn binding_with(options: &str) -> String {
    format!(
        "user = \"nobody\"\n[binding.a]\nlisten=[\"0.0.0.0:80\", \"[::]:80\", \"udp://0.0.0.0:53\"]\ngroup=\"root\"\n{options}"
    )
}

#[test]
fn accepts_every_socket_option() {
    let config = check(&binding_with(
        "nonblocking = true\nipv6_only = true\nfree_bind = true\nbind_to_device = \"lo\"\n\
         reuse_address = false\ndefer_accept = 5\nfast_open = 64\nkeepalive = true\n\
         keepalive_idle = 60\nkeepalive_interval = 10\nkeepalive_count = 5\n\
         receive_buffer = \"8M\"\nsend_buffer = 65536\nmark = 4294967295\n",
    ))
    .unwrap();
    let o = &config.bindings[0].options;
    assert!(o.nonblocking && o.ipv6_only && o.free_bind && o.keepalive);
    assert_eq!(o.bind_to_device.as_deref(), Some("lo"));
    assert_eq!(
        (o.reuse_address, o.defer_accept, o.fast_open),
        (Some(false), Some(5), Some(64))
    );
    assert_eq!(
        (o.keepalive_idle, o.keepalive_interval, o.keepalive_count),
        (Some(60), Some(10), Some(5))
    );
    assert_eq!(
        (o.receive_buffer, o.send_buffer, o.mark),
        (Some(8 << 20), Some(65536), Some(u32::MAX))
    );
    let plain = check(GOOD).unwrap();
    assert_eq!(plain.bindings[1].options, SocketOptions::default());
}

#[test]
fn socket_option_problems_name_binding_field_value_and_fix() {
    let cases = [
        (
            "defer_accept = 0",
            "field `defer_accept`: 0 is out of range: use 1 to 3600 seconds",
        ),
        (
            "fast_open = 5000",
            "field `fast_open`: 5000 is out of range: use 1 to 4096",
        ),
        (
            "keepalive_idle = 40000",
            "field `keepalive_idle`: 40000 is out of range: use 1 to 32767 seconds",
        ),
        (
            "keepalive_interval = -1",
            "field `keepalive_interval`: -1 is out of range",
        ),
        (
            "keepalive_count = 128",
            "field `keepalive_count`: 128 is out of range: use 1 to 127 probes",
        ),
        (
            "mark = -1",
            "field `mark`: -1 is out of range: use 0 to 4294967295",
        ),
        (
            "receive_buffer = \"8X\"",
            "field `receive_buffer`: \"8X\" is not a buffer size",
        ),
        (
            "send_buffer = 0",
            "field `send_buffer`: 0 is not a buffer size: give bytes from 1 to 1073741823",
        ),
        (
            "receive_buffer = \"1G\"",
            "field `receive_buffer`: \"1G\" is not a buffer size",
        ),
        (
            "bind_to_device = \"a-very-long-interface\"",
            "field `bind_to_device`: \"a-very-long-interface\" is 21 bytes long; interface names have at most 15",
        ),
        (
            "bind_to_device = \"eth0/1\"",
            "field `bind_to_device`: \"eth0/1\" contains `/`",
        ),
        (
            "ipv6_only = false",
            "field `listen`: tcp://0.0.0.0:80 collides with tcp://[::]:80, which takes IPv4 too with `ipv6_only = false`: remove tcp://0.0.0.0:80",
        ),
    ];
    for (options, expected) in cases {
        let message = problems(&binding_with(options));
        let expected = format!("binding `a`: {expected}");
        assert!(message.contains(&expected), "{options}\n=> {message}");
        assert!(
            message.starts_with("invalid configuration (t.toml):"),
            "{message}"
        );
    }
}

#[test]
fn socket_options_must_apply_to_an_address_of_the_binding() {
    let udp_v4 =
        "user = \"nobody\"\n[binding.dns]\nlisten=[\"udp://0.0.0.0:53\"]\ngroup=\"root\"\n";
    for key in [
        "defer_accept = 5",
        "fast_open = 5",
        "keepalive = true",
        "keepalive_idle = 5",
        "keepalive_interval = 5",
        "keepalive_count = 5",
    ] {
        let message = problems(&format!("{udp_v4}{key}"));
        let field = key.split(' ').next().unwrap();
        assert!(
            message.contains(&format!("binding `dns`: field `{field}`: applies to TCP sockets, and the binding has no tcp:// address: remove it")),
            "{message}"
        );
    }
    let message = problems(&format!("{udp_v4}ipv6_only = false"));
    assert!(
        message.contains(
            "field `ipv6_only`: applies to IPv6 sockets, and the binding has no IPv6 address"
        ),
        "{message}"
    );
    // Options for both protocols are fine on UDP.
    check(&format!(
        "{udp_v4}nonblocking = true\nfree_bind = true\nreceive_buffer = 1024\nreuse_address = true"
    ))
    .unwrap();
}

#[test]
fn dual_stack_bindings_collide_with_ipv4_addresses() {
    // One dual-stack socket takes IPv4 too: fine alone.
    check(
        "user = \"nobody\"\n[binding.a]\nlisten=[\"[::]:80\"]\ngroup=\"root\"\nipv6_only = false",
    )
    .unwrap();
    let message = problems(
        "user = \"nobody\"\n[binding.a]\nlisten=[\"[::]:80\"]\ngroup=\"root\"\nipv6_only = false\n\
         [binding.b]\nlisten=[\"127.0.0.1:80\"]\ngroup=\"root\"",
    );
    assert!(
        message.contains("binding `b`: field `listen`: tcp://127.0.0.1:80 collides with tcp://[::]:80 of binding `a` (a dual-stack socket, `ipv6_only = false`, takes IPv4 too)"),
        "{message}"
    );
    // An IPv4-mapped address needs a dual-stack socket.
    let message = problems(
        "user = \"nobody\"\n[binding.a]\nlisten=[\"[::ffff:127.0.0.1]:80\"]\ngroup=\"root\"",
    );
    assert!(message.contains("binding `a`: field `listen`: tcp://[::ffff:127.0.0.1]:80 is an IPv4-mapped address, which an IPv6-only socket cannot bind: write it as IPv4 (127.0.0.1:80) or set `ipv6_only = false`"), "{message}");
    check("user = \"nobody\"\n[binding.a]\nlisten=[\"[::ffff:127.0.0.1]:80\"]\ngroup=\"root\"\nipv6_only = false").unwrap();
    let message = problems(
        "user = \"nobody\"\n[binding.a]\nlisten=[\"[::1]:80\"]\ngroup=\"root\"\nipv6_only = false",
    );
    assert!(
        message.contains("binding `a`: field `ipv6_only`: false changes only `[::]:PORT`"),
        "{message}"
    );
}

#[test]
fn wrong_types_of_socket_options_are_parse_errors_naming_binding_and_line() {
    let message = problems(&binding_with("nonblocking = \"yes\""));
    assert!(
        message.contains("binding `a`: TOML parse error at line 5"),
        "{message}"
    );
    assert!(message.contains("nonblocking = \"yes\""), "{message}");
}
