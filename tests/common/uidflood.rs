//! Thousands of distinct uids from real processes: the `uidflood` helper
//! (tests/clients/uidflood.c), compiled into the test directory and run as root. Each of its
//! children drops to a uid of its own (no passwd entry needed) with the binding's group as
//! its gid before it connects, so the daemon judges and logs the kernel's record of that uid.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use super::{Proc, TestEnv};

/// What `uidflood fetch` reports: how the children's fetches were answered.
#[derive(Debug, Deserialize)]
pub struct Fetched {
    /// Answered with a grant (and its descriptors).
    pub granted: u64,
    /// Answered with a denial.
    pub denied: u64,
    /// No answer, a broken one, or a child that could not run.
    pub failed: u64,
}

/// What `uidflood hold` reports once every answer has arrived (peeked at, never read).
#[derive(Debug, Deserialize)]
pub struct Held {
    /// Connections made (and kept open).
    pub connections: u64,
    /// Answers that are grants, left unread.
    pub granted: u64,
    /// Answers that are denials.
    pub denied: u64,
    /// Connections without an answer after 30 s.
    pub unanswered: u64,
}

/// Compiles tests/clients/uidflood.c into the test directory (once) and returns its path.
pub fn helper(env: &TestEnv) -> PathBuf {
    let out = env.path().join("uidflood");
    if out.exists() {
        return out;
    }
    super::shim::compile_c(env, "uidflood")
}

fn spawn(env: &TestEnv, args: &[&OsStr]) -> Proc {
    let mut cmd = Command::new(helper(env));
    cmd.args(args).current_dir(env.path());
    Proc::spawn(cmd, &format!("uidflood {:?}", args[0]))
}

/// `uidflood fetch`: `count` children with uids `first_uid`, `first_uid + 1`, … and gid
/// `gid`, at most `parallel` at a time, each fetching once from `socket`. It prints `half`
/// when half of them have finished, then a [`Fetched`] line.
pub fn fetch(
    env: &TestEnv,
    socket: &Path,
    gid: u32,
    first_uid: u32,
    count: u32,
    parallel: u32,
) -> Proc {
    let numbers = [gid, first_uid, count, parallel].map(|n| n.to_string());
    let mut args: Vec<&OsStr> = vec!["fetch".as_ref(), socket.as_os_str()];
    args.extend(numbers.iter().map(|n| OsStr::new(n.as_str())));
    spawn(env, &args)
}

/// `uidflood hold`: `count` children with uids `first_uid`, … and gid `gid`, each opening
/// `per_uid` connections to `socket` and reading none. It prints a [`Held`] line once every
/// answer has arrived, then keeps everything open until it is killed (dropping the
/// [`Proc`] kills it, and its children die with it).
pub fn hold(
    env: &TestEnv,
    socket: &Path,
    gid: u32,
    first_uid: u32,
    count: u32,
    per_uid: u32,
) -> Proc {
    hold_as("hold", env, socket, [gid, first_uid, count, per_uid])
}

/// [`hold`], but each child also shuts its end down for writing (`shutdown(SHUT_WR)`) after
/// connecting, as a client with nothing to say might, and still reads nothing.
pub fn hold_shut(
    env: &TestEnv,
    socket: &Path,
    gid: u32,
    first_uid: u32,
    count: u32,
    per_uid: u32,
) -> Proc {
    hold_as("hold-shut", env, socket, [gid, first_uid, count, per_uid])
}

fn hold_as(mode: &str, env: &TestEnv, socket: &Path, numbers: [u32; 4]) -> Proc {
    let numbers = numbers.map(|n| n.to_string());
    let mut args: Vec<&OsStr> = vec![mode.as_ref(), socket.as_os_str()];
    args.extend(numbers.iter().map(|n| OsStr::new(n.as_str())));
    spawn(env, &args)
}
