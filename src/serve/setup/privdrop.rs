//! Steps 6 and 7 of start-up: drop every privilege, then prove it by reading it back.
//!
//! Started as root, the daemon locks the securebits, empties the bounding and ambient
//! sets, sets no supplementary groups, switches all three gids and uids to the run user
//! (which makes the kernel clear the permitted and effective sets), clears the rest, sets
//! no_new_privs and becomes non-dumpable. Started as a non-root user that holds ambient
//! capabilities (systemd's AmbientCapabilities=), it keeps its uid and clears the sets.

use nix::errno::Errno;
use nix::sys::prctl;
use nix::unistd::{Gid, Uid, getgroups, setgid, setgroups, setresgid, setresuid, setuid};

use caps::{CapSet, Capability};

use crate::serve::procfs;
use crate::serve::sys;

/// SECBIT_NOROOT | _LOCKED, SECBIT_NO_SETUID_FIXUP_LOCKED (fixups stay on: a uid change
/// clears capabilities), SECBIT_KEEP_CAPS_LOCKED (keep-caps stays off) and
/// SECBIT_NO_CAP_AMBIENT_RAISE | _LOCKED. See capabilities(7).
pub const SECUREBITS: u32 = 0x01 | 0x02 | 0x08 | 0x20 | 0x40 | 0x80;

/// What the drop did, for the audit line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The uid now in force (all of real, effective, saved).
    pub uid: Uid,
    /// The gid now in force.
    pub gid: Gid,
    /// Whether the process could empty the bounding set (it needs CAP_SETPCAP).
    pub bounding_cleared: bool,
    /// Whether it started as root.
    pub was_root: bool,
    /// The supplementary groups kept: none when started as root; whatever the service
    /// manager gave (SupplementaryGroups=) when started without root.
    pub groups: Vec<Gid>,
}

/// A step of the drop failed; the daemon must not serve.
#[derive(Debug, thiserror::Error)]
#[error("cannot drop privileges: {step} failed")]
pub struct DropError {
    /// What was being done.
    pub step: &'static str,
    /// The cause.
    pub source: std::io::Error,
}

fn step<E: Into<std::io::Error>>(step: &'static str) -> impl FnOnce(E) -> DropError {
    move |e| DropError {
        step,
        source: e.into(),
    }
}

fn errno(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

fn caps_err(e: caps::errors::CapsError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// The highest capability number this kernel knows: PR_CAPBSET_READ answers EINVAL past
/// it. (Asking the kernel needs no /proc, which a hardened unit may hide.)
pub fn last_cap() -> u32 {
    (0..64)
        .take_while(|&cap| sys::bounding_has(cap).is_ok())
        .last()
        .unwrap_or(0)
}

/// Drops to `uid`/`gid` (when started as root) and clears every capability set.
pub fn drop_privileges(uid: Uid, gid: Gid) -> Result<Dropped, DropError> {
    let was_root = Uid::effective().is_root();
    let can_setpcap =
        caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).unwrap_or(false);
    prctl::set_keepcaps(false).map_err(|e| step("PR_SET_KEEPCAPS 0")(errno(e)))?;
    if can_setpcap {
        // These need CAP_SETPCAP, so they come before the uid change takes it away.
        sys::set_securebits(SECUREBITS).map_err(step("lock securebits"))?;
        for cap in 0..=last_cap() {
            sys::bounding_drop(cap).map_err(step("empty the bounding set"))?;
        }
    }
    sys::ambient_clear().map_err(step("clear the ambient set"))?;
    if was_root {
        // Groups first: after setresuid the process may no longer change them.
        setgroups(&[]).map_err(|e| step("setgroups(none)")(errno(e)))?;
        setresgid(gid, gid, gid).map_err(|e| step("setresgid")(errno(e)))?;
        setresuid(uid, uid, uid).map_err(|e| step("setresuid")(errno(e)))?;
    }
    for set in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
        caps::clear(None, set).map_err(|e| step("clear a capability set")(caps_err(e)))?;
    }
    prctl::set_no_new_privs().map_err(|e| step("PR_SET_NO_NEW_PRIVS")(errno(e)))?;
    prctl::set_dumpable(false).map_err(|e| step("PR_SET_DUMPABLE 0")(errno(e)))?;
    Ok(Dropped {
        uid: Uid::current(),
        gid: Gid::current(),
        bounding_cleared: can_setpcap,
        was_root,
        groups: getgroups().unwrap_or_default(),
    })
}

/// The drop could not be confirmed: each entry names a check that failed.
#[derive(Debug, thiserror::Error)]
#[error("privilege drop not verified: {}", failures.join("; "))]
pub struct VerifyError {
    /// The failed checks.
    pub failures: Vec<String>,
}

/// Reads the drop back from /proc/self/status and from the system calls, and tries to
/// regain root: every check must hold or the daemon must not serve.
pub fn verify(dropped: &Dropped) -> Result<(), VerifyError> {
    let mut failures = Vec::new();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| procfs::status_field(&status, name);
    for (name, id) in [("Uid", dropped.uid.as_raw()), ("Gid", dropped.gid.as_raw())] {
        match field(name) {
            Some(ids) if ids.len() == 4 && ids.iter().all(|v| *v == id.to_string()) => {}
            other => failures.push(format!("{name} is {other:?}, expected {id} four times")),
        }
        if dropped.was_root && id == 0 {
            failures.push(format!("{name} is still 0"));
        }
    }
    if dropped.was_root && !getgroups().is_ok_and(|g| g.is_empty()) {
        failures.push("supplementary groups remain".to_owned());
    }
    let mut sets = vec!["CapInh", "CapPrm", "CapEff", "CapAmb"];
    if dropped.bounding_cleared {
        sets.push("CapBnd");
    }
    for name in sets {
        match field(name) {
            Some(v) if v.len() == 1 && u64::from_str_radix(v[0], 16) == Ok(0) => {}
            other => failures.push(format!("{name} is {other:?}, expected 0")),
        }
    }
    for set in [
        CapSet::Effective,
        CapSet::Permitted,
        CapSet::Inheritable,
        CapSet::Ambient,
    ] {
        if !caps::read(None, set).is_ok_and(|c| c.is_empty()) {
            failures.push(format!("capget reports {set:?} non-empty"));
        }
    }
    if dropped.bounding_cleared && (0..=last_cap()).any(|c| sys::bounding_has(c).unwrap_or(true)) {
        failures.push("PR_CAPBSET_READ finds a capability in the bounding set".to_owned());
    }
    if dropped.bounding_cleared && sys::securebits().ok() != Some(SECUREBITS) {
        failures.push(format!(
            "securebits are {:?}, expected {SECUREBITS:#x}",
            sys::securebits().ok()
        ));
    }
    if field("NoNewPrivs").as_deref() != Some(&["1"]) || prctl::get_no_new_privs() != Ok(true) {
        failures.push("NoNewPrivs is not 1".to_owned());
    }
    if setuid(Uid::from_raw(0)).is_ok() {
        failures.push("setuid(0) succeeded".to_owned());
    }
    if setgid(Gid::from_raw(0)).is_ok() {
        failures.push("setgid(0) succeeded".to_owned());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(VerifyError { failures })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checker itself must fail on a process that still holds privileges: here the test
    /// process, which runs as root with capabilities (the suite runs as root).
    #[test]
    fn verify_fails_while_privileges_are_held() {
        assert!(Uid::effective().is_root(), "the test suite runs as root");
        let held = Dropped {
            uid: Uid::current(),
            gid: Gid::current(),
            bounding_cleared: true,
            was_root: true,
            groups: vec![],
        };
        let failures = verify(&held).unwrap_err().failures.join("\n");
        for expected in [
            "Uid is still 0",
            "CapPrm is",
            "CapEff is",
            "capget reports Effective non-empty",
            "bounding set",
            "NoNewPrivs is not 1",
            "setuid(0) succeeded",
        ] {
            assert!(
                failures.contains(expected),
                "{expected} missing from:\n{failures}"
            );
        }
    }
}
