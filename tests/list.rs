//! `portbinder list`: what is offered, and whether the caller may fetch it, judged from the
//! socket files and the caller's groups alone.

mod common;

use common::*;

const BINDINGS: &str = r#"
[binding.http]
listen = ["127.0.0.1:80"]
group = "www-data"

[binding.open]
listen = ["127.0.0.1:81"]
group = "www-data"
mode = "0666"
"#;

fn list_as(env: &TestEnv, user: User) -> Outcome {
    let dir = env.socket_dir();
    Proc::spawn(
        env.portbinder_as(
            user,
            &["list".as_ref(), "--socket-dir".as_ref(), dir.as_os_str()],
        ),
        "portbinder list",
    )
    .finish(EXIT_TIMEOUT)
}

#[test]
fn shows_bindings_and_access_per_caller() {
    let env = TestEnv::new();
    let _daemon = env.serve(&env.config(BINDINGS));
    let member = list_as(&env, WWW_DATA);
    member.assert_success();
    assert_eq!(
        member.stdout,
        "BINDING  GROUP     MODE  FETCH\n\
         http     www-data  0660  yes: member of www-data\n\
         open     www-data  0666  yes: member of www-data\n",
        "{member}"
    );
    let outsider = list_as(&env, DAEMON);
    outsider.assert_success();
    assert!(
        outsider
            .stdout
            .contains("http     www-data  0660  no: not a member of www-data\n"),
        "{outsider}"
    );
    assert!(
        outsider
            .stdout
            .contains("open     www-data  0666  maybe: anyone can connect"),
        "{outsider}"
    );
    // Supplementary membership counts, as it does for the daemon.
    let supplementary = list_as(&env, DAEMON_IN_WWW_DATA);
    assert!(
        supplementary
            .stdout
            .contains("http     www-data  0660  yes: member of www-data\n"),
        "{supplementary}"
    );
    // What list says "yes" to, exec can really fetch.
    env.probe(DAEMON_IN_WWW_DATA, &env.socket("http"))
        .assert_granted(1);
}

#[test]
fn missing_directory_is_a_clear_error() {
    let env = TestEnv::new();
    let outcome = list_as(&env, WWW_DATA);
    outcome.assert_error(7, &["cannot list", "is portbinder running", "No such file"]);
}
