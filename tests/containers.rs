//! Containers: a rootless container (tests/common/container.rs: user, mount, pid and network
//! namespaces, subordinate ids mapped with newuidmap/newgidmap, an empty root filesystem with
//! only the binding's socket, the static client and a static server bind-mounted in) gets
//! port 80 of the host's network namespace, here the test's own, and sees the real client
//! address, where a forwarder into the container shows its own; the binding admits the
//! container's subordinate ids by range, and a uid outside the range is denied with its
//! reason; the static client needs nothing from the root filesystem it runs in.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::container::{Container, SubIds, compile_static, static_client};
use common::*;

/// The server inside the containers (C, compiled static by each test).
const ADDRSERVER_C: &str = include_str!("clients/addrserver.c");

/// The unprivileged account that runs the containers, as alice runs rootless Podman.
const OWNER: User = DAEMON;

/// A binding of port 80 whose socket anyone may connect to (a container's ids are in no
/// group of the host), admitting `allow_users`.
fn config(env: &TestEnv, allow_users: &str) -> PathBuf {
    env.config(&format!(
        "[binding.http]\nlisten = [\"0.0.0.0:80\"]\ngroup = \"www-data\"\nmode = \"0666\"\n\
         allow_users = [\"{allow_users}\"]\n"
    ))
}

/// A container with the static client at /portbinder-exec, the server at /addrserver and the
/// binding's socket at /run/portbinder/http.sock (portbinder-exec's default directory), and
/// nothing else but /proc.
fn container(env: &TestEnv, name: &str, subids: &SubIds) -> Container {
    let client = env.install(&static_client(), "portbinder-exec");
    let server = env.path().join("addrserver");
    if !server.exists() {
        compile_static(env, ADDRSERVER_C, "addrserver");
    }
    let mut ctr = Container::new(env, name, OWNER, subids);
    ctr.bind_ro(&client, "/portbinder-exec")
        .bind_ro(&server, "/addrserver")
        .bind(&env.socket("http"), "/run/portbinder/http.sock")
        .with_proc();
    ctr
}

/// `curl` from `source`, the body of the answer.
fn curl_from(source: &str, url: &str) -> String {
    let mut cmd = Command::new("curl");
    cmd.args([
        "--silent",
        "--show-error",
        "--max-time",
        "10",
        "--interface",
        source,
        url,
    ]);
    let outcome = Proc::spawn(cmd, "curl").finish(EXIT_TIMEOUT);
    outcome.assert_success();
    outcome.stdout
}

/// `key=value` of a line such as the server's `serving …` or its answers.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

fn netns_of(path: impl AsRef<Path>) -> String {
    fs::read_link(path).unwrap().display().to_string()
}

#[test]
fn a_rootless_container_gets_port_80_of_the_host_with_the_real_client_address() {
    let env = TestEnv::new();
    let subids = SubIds::allot(OWNER.name, 200_000, 65_536);
    assert_eq!(subids.range(), "200000-265535");
    let daemon = env.serve(&config(&env, &subids.range()));
    let ctr = container(&env, "rootfs", &subids);

    // The server runs as the container's uid 1000; it answers 2 requests: one on the socket
    // from the host, one on a port it binds itself in its own network namespace.
    let mut server = ctr.spawn(
        1000,
        1000,
        &[
            "/portbinder-exec",
            "http",
            "--",
            "/addrserver",
            "serve",
            "2",
            "8080",
        ],
    );
    let serving = server.next_line(EXIT_TIMEOUT);
    // PID 1 of its pid namespace (LISTEN_PID=1, as Podman sets it), uid 1000 inside, a
    // network namespace of its own, and a root filesystem holding only what was put there.
    assert!(
        serving.starts_with("serving fds=2 pid=1 uid=1000 gid=1000 "),
        "{serving}"
    );
    assert_eq!(
        field(&serving, "root"),
        "addrserver,portbinder-exec,proc,run"
    );
    let inside_netns = field(&serving, "netns").to_owned();
    assert_ne!(
        inside_netns,
        netns_of("/proc/thread-self/ns/net"),
        "{serving}"
    );

    // The daemon saw the container's uid 1000 as subordinate uid 200999, in range.
    let grant = daemon.wait_event("grant", &[("binding", "http")]);
    grant.assert_fields(&[
        ("uid", &subids.outer(1000).to_string()),
        ("gid", &subids.outer(1000).to_string()),
        ("user", "-"),
    ]);
    let pid = grant.number("pid");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.contains("\nUid:\t200999\t200999\t200999\t200999\n"),
        "{status}"
    );
    assert_eq!(netns_of(format!("/proc/{pid}/ns/net")), inside_netns);
    assert_ne!(
        netns_of(format!("/proc/{pid}/ns/user")),
        netns_of("/proc/self/ns/user")
    );
    // The client was bind-mounted read-only.
    let mountinfo = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert!(
        mountinfo.lines().any(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f[4] == "/portbinder-exec" && f[5].split(',').any(|o| o == "ro")
        }),
        "{mountinfo}"
    );

    // A client from 127.0.0.2 on port 80 of the test's namespace: the server sees 127.0.0.2.
    let direct = curl_from("127.0.0.2", "http://127.0.0.1/");
    assert!(direct.starts_with("client=127.0.0.2 port="), "{direct}");
    assert!(
        direct.ends_with(" local=127.0.0.1:80 uid=1000\n"),
        "{direct}"
    );

    // The same client through a forwarder into the container's network namespace (what
    // rootlessport or slirp4netns do for `podman run -p`): the server sees the forwarder.
    let forward =
        format!("SYSTEM:exec nsenter --net=/proc/{pid}/ns/net socat STDIO TCP\\:127.0.0.1\\:8080");
    let mut socat = Command::new("socat");
    socat.args(["TCP-LISTEN:8080,bind=127.0.0.1,reuseaddr,fork", &forward]);
    let _socat = Proc::spawn(socat, "socat forwarder");
    let listening = wait_until(EXIT_TIMEOUT, || {
        let ss = Command::new("ss")
            .args(["-Hltn", "sport = :8080"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&ss.stdout).contains("127.0.0.1:8080")
    });
    assert!(listening, "socat is not listening on 127.0.0.1:8080");
    let proxied = curl_from("127.0.0.2", "http://127.0.0.1:8080/");
    assert!(proxied.starts_with("client=127.0.0.1 port="), "{proxied}");
    assert!(
        proxied.ends_with(" local=127.0.0.1:8080 uid=1000\n"),
        "{proxied}"
    );

    server.finish(EXIT_TIMEOUT).assert_success();
}

#[test]
fn a_uid_outside_the_range_is_denied_with_its_reason() {
    let env = TestEnv::new();
    let subids = SubIds::allot(OWNER.name, 300_000, 65_536);
    // Only the container's uids 1 to 1000: subordinate uids 300000 to 300999.
    let range = format!("{}-{}", subids.outer(1), subids.outer(1000));
    let daemon = env.serve(&config(&env, &range));
    let ctr = container(&env, "rootfs", &subids);
    let check = ["/portbinder-exec", "http", "--", "/addrserver", "check"];

    // The first and the last uid of the range are granted.
    for inner in [1, 1000] {
        let outcome = ctr.spawn(inner, inner, &check).finish(EXIT_TIMEOUT);
        outcome.assert_success();
        assert_eq!(
            outcome.stdout,
            format!("ok fds=1 pid=1 uid={inner} gid={inner}\n"),
            "{outcome}"
        );
        daemon.wait_event("grant", &[("uid", &subids.outer(inner).to_string())]);
    }

    // One past the end is denied, and so is the container's root (its owner's own uid, as
    // rootless Podman maps it): the program never runs.
    for (inner, outer) in [(1001, subids.outer(1001)), (0, OWNER.uid)] {
        let reason = format!(
            "uid {outer} may not fetch binding `http`: it is not an allowed user and none of \
             its groups is allowed"
        );
        let outcome = ctr.spawn(inner, inner, &check).finish(EXIT_TIMEOUT);
        outcome.assert_error(
            6,
            &[
                "binding `http`: access to /run/portbinder/http.sock denied:",
                &reason,
            ],
        );
        assert_eq!(outcome.stdout, "", "the program ran: {outcome}");
        let deny = daemon.wait_event("deny", &[("uid", &outer.to_string())]);
        deny.assert_fields(&[("binding", "http")]);
        assert_eq!(deny.get("reason"), Some(reason.as_str()), "{}", deny.line);
        assert_eq!(deny.severity, "warning", "{}", deny.line);
    }
}

#[test]
fn check_refuses_bad_id_ranges_naming_file_binding_and_field() {
    let env = TestEnv::new();
    let config = env.config(
        "[binding.http]\nlisten = [\"0.0.0.0:80\"]\ngroup = \"www-data\"\n\
         allow_users = [\"0-65535\", \"165535-100000\", \"100000-\", \"1-4294967294\"]\n\
         allow_groups = [\"0-65535\", \"1-4294967295\"]\n",
    );
    let path = config.to_str().unwrap();
    let expected = [
        "binding `http`: field `allow_users`: `0-65535` contains uid 0 (root): a range must start at 1 or above",
        "the host side of /etc/subuid (`alice:100000:65536` is 100000-165535), not the ids inside a container",
        "binding `http`: field `allow_users`: `165535-100000` is backwards: write the lower uid first, `100000-165535`",
        "binding `http`: field `allow_users`: `100000-` is not an id range: write FIRST-LAST",
        "binding `http`: field `allow_users`: `1-4294967294` holds 4294967294 uids; one range may hold at most 2147483648",
        "binding `http`: field `allow_groups`: `0-65535` contains gid 0 (root's group)",
        "binding `http`: field `allow_groups`: `1-4294967295`: 4294967295 is not a gid: the largest is 4294967294",
    ];
    for outcome in [
        run_check(&["--config", path]),
        run_serve_expect_failure(&["--config", path]),
    ] {
        let mut needles = vec![path];
        needles.extend(expected);
        outcome.assert_error(3, &needles);
        // One line per problem (six), under the line naming the file: every problem at once.
        assert_eq!(outcome.stderr.lines().count(), 1 + 6, "{outcome}");
    }
    env.assert_no_socket_files();
    // The same from flags, and good ranges are accepted.
    let flags = |allow: &str| {
        run_check(&[
            "--bind",
            "http=0.0.0.0:80",
            "--group",
            "www-data",
            "--user",
            "nobody",
            "--allow-user",
            allow,
            "--allow-group",
            "100000-165535",
        ])
    };
    flags("0-99").assert_error(
        3,
        &[
            "(command line)",
            "binding `http`: field `allow_users`: `0-99` contains uid 0",
        ],
    );
    let ok = flags("100000-165535");
    ok.assert_success();
}

#[test]
fn the_static_client_needs_nothing_from_its_root_filesystem() {
    let env = TestEnv::new();
    let client = env.install(&static_client(), "portbinder-exec");
    let ldd = Command::new("ldd").arg(&client).output().unwrap();
    let said =
        String::from_utf8_lossy(&ldd.stdout).into_owned() + &String::from_utf8_lossy(&ldd.stderr);
    assert!(
        said.contains("statically linked") || said.contains("not a dynamic executable"),
        "ldd: {said}"
    );

    // A root filesystem holding the client, a static program and a socket directory:
    // no libc, no loader, no /etc, /dev or /proc.
    let daemon = env.serve(&env.config(
        "[binding.http]\nlisten = [\"127.0.0.1:80\", \"[::1]:80\"]\ngroup = \"www-data\"\nmode = \"0666\"\n",
    ));
    let program = compile_static(&env, ADDRSERVER_C, "addrserver");
    let root = env.path().join("scratch");
    fs::create_dir_all(root.join("run/portbinder")).unwrap();
    fs::copy(&client, root.join("portbinder-exec")).unwrap();
    fs::copy(&program, root.join("addrserver")).unwrap();
    let listing: Vec<String> = walk(&root);
    assert_eq!(
        listing,
        ["addrserver", "portbinder-exec", "run", "run/portbinder"]
    );
    let socket_dir = env.socket_dir();
    let run_in_scratch = |user: User, argv: &[&str]| {
        // Only the socket directory comes in, bind-mounted: unshare --mount makes the mount
        // private to this command; --root chroots; --setuid/--setgid drop root.
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(
                "dir=$1 root=$2 gid=$3 uid=$4; shift 4; mount --bind \"$dir\" \"$root/run/portbinder\" \
                 && exec unshare --root=\"$root\" --setgid=\"$gid\" --setuid=\"$uid\" -- \"$@\"",
            )
            .arg("sh")
            .arg(&socket_dir)
            .arg(&root)
            .arg(user.gid.to_string())
            .arg(user.uid.to_string())
            .args(argv)
            .env_clear();
        Proc::spawn(cmd, "portbinder-exec in a scratch root").finish(EXIT_TIMEOUT)
    };

    let version = run_in_scratch(WWW_DATA, &["/portbinder-exec", "--version"]);
    version.assert_success();
    assert_eq!(
        version.stdout,
        format!("portbinder-exec {}\n", env!("CARGO_PKG_VERSION"))
    );
    // Granted: both sockets at fds 3 and 4, LISTEN_PID the program's own pid.
    let granted = run_in_scratch(
        WWW_DATA,
        &["/portbinder-exec", "http", "--", "/addrserver", "check"],
    );
    granted.assert_success();
    assert!(
        granted.stdout.starts_with("ok fds=2 pid=") && granted.stdout.ends_with(" uid=33 gid=33\n"),
        "{granted}"
    );
    daemon.wait_event("grant", &[("uid", "33")]);
    // Its errors, with their codes, read nothing from the root filesystem either.
    run_in_scratch(WWW_DATA, &["/portbinder-exec", "nope", "--", "/addrserver", "check"])
        .assert_error(
            7,
            &["binding `nope`: no binding at /run/portbinder/nope.sock: check the name with `portbinder list`, and that portbinder is running"],
        );
    run_in_scratch(
        NOBODY,
        &["/portbinder-exec", "http", "--", "/addrserver", "check"],
    )
    .assert_error(6, &["uid 65534 may not fetch binding `http`"]);
    run_in_scratch(WWW_DATA, &["/portbinder-exec", "http", "--", "/bin/true"]).assert_error(
        127,
        &["cannot execute `/bin/true`: No such file or directory"],
    );
    run_in_scratch(WWW_DATA, &["/portbinder-exec", "http"]).assert_error(2, &["no program to run"]);
}

/// The entries below `dir`, relative and sorted.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}
