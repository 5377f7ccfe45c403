use super::*;

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
