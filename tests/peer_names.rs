//! A peer's process name in its audit line is read while the peer is still waiting for its
//! answer, so a client that exits the moment it has its grant is still named, and named for
//! sure (`comm_verified=yes`). Read after the answer, the name of such a client was lost
//! (`comm=-`) whenever it won the race, as loaded machines showed.

mod common;

use common::shim::compile_c;
use common::*;

#[test]
fn a_client_that_exits_as_soon_as_it_is_granted_is_named() {
    let env = TestEnv::new();
    let daemon = env.serve(&env.config(HTTP_BINDING));
    let client = compile_c(&env, "quickfetch");
    let socket = env.socket("http");
    // The daemon on CPU 0 at the lowest priority, each client on CPU 0 at the highest: the
    // daemon's sendmsg wakes the client, which runs (and exits) before the daemon goes on.
    pin_to_cpu0(daemon.pid() as i32, 19);
    // 20 grants: all logged (the rate limit lets 20 per uid and binding through in 10 s).
    for _ in 0..20 {
        let mut cmd = std::process::Command::new("taskset");
        cmd.args(["--cpu-list", "0", "nice", "-n", "-20"])
            .arg(&client)
            .arg(&socket);
        WWW_DATA.apply(&mut cmd);
        let outcome = Proc::spawn(cmd, "quickfetch as www-data").finish(EXIT_TIMEOUT);
        outcome.assert_success();
        let pid = outcome.stdout.trim().to_owned();
        let grant = daemon.wait_event("grant", &[("pid", &pid)]);
        grant.assert_fields(&[
            ("uid", "33"),
            ("comm_verified", "yes"),
            ("comm", "quickfetch"),
        ]);
    }
}

/// Pins process `pid` to CPU 0 and gives it the niceness `nice`.
fn pin_to_cpu0(pid: i32, nice: i32) {
    let taskset = std::process::Command::new("taskset")
        .args(["--all-tasks", "--cpu-list", "--pid", "0", &pid.to_string()])
        .output()
        .unwrap();
    assert!(taskset.status.success(), "{taskset:?}");
    let renice = std::process::Command::new("renice")
        .args(["-n", &nice.to_string(), "-p", &pid.to_string()])
        .output()
        .unwrap();
    assert!(renice.status.success(), "{renice:?}");
}
