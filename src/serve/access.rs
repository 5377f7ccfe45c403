//! The access decision: deny by default, from kernel credentials only. One decision for the
//! serve loop (a peer's SO_PEERCRED, src/serve/grant/) and for recovery at start-up (a
//! holder's /proc/PID/status, src/serve/setup/recover/).

use nix::unistd::{Gid, Uid};

use crate::config::Binding;

/// Whether the uid or the primary gid alone admits a process; when it does, its
/// supplementary groups need not be read.
pub fn admits_by_ids(binding: &Binding, uid: Uid, gid: Gid) -> bool {
    allowed_user(binding, uid) || allowed_group(binding, gid)
}

fn allowed_user(binding: &Binding, uid: Uid) -> bool {
    binding.allow_users.iter().any(|users| users.contains(uid))
}

fn allowed_group(binding: &Binding, gid: Gid) -> bool {
    binding
        .allow_groups
        .iter()
        .any(|groups| groups.contains(gid))
}

/// Grants a process (effective `uid`, `gid`, supplementary `groups`) access to `binding`
/// when its uid is an allowed user (or in an allowed
/// range), or its gid or one of its supplementary groups is an allowed group (or in an
/// allowed range; the socket's group always is allowed). The ids are the kernel's, as the
/// daemon's user namespace sees them: a rootless container's process is judged by its
/// subordinate id. uid 0 gets no exception. `Err` holds the reason sent to the peer and
/// logged.
pub fn decide(binding: &Binding, uid: Uid, gid: Gid, groups: &[Gid]) -> Result<(), String> {
    if admits_by_ids(binding, uid, gid) {
        return Ok(());
    }
    if groups.iter().any(|&g| allowed_group(binding, g)) {
        return Ok(());
    }
    Err(format!(
        "uid {uid} may not fetch binding `{}`: it is not an allowed user and none of its groups is allowed",
        binding.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ids::{GroupId, IdRange, resolve_group_range, resolve_user_range};

    fn binding() -> Binding {
        Binding {
            name: "http".into(),
            listen: vec!["0.0.0.0:80".parse().unwrap()],
            backlog: 16,
            group: GroupId {
                name: "www".into(),
                gid: Gid::from_raw(33),
            },
            mode: 0o660,
            allow_users: vec![IdRange::single(Uid::from_raw(1000))],
            allow_groups: vec![
                IdRange::single(Gid::from_raw(33)),
                IdRange::single(Gid::from_raw(50)),
            ],
            options: Default::default(),
        }
    }

    /// decide() for a process with these ids.
    fn decide_ids(b: &Binding, uid: u32, gid: u32, groups: &[u32]) -> Result<(), String> {
        let groups: Vec<Gid> = groups.iter().map(|&g| Gid::from_raw(g)).collect();
        decide(b, Uid::from_raw(uid), Gid::from_raw(gid), &groups)
    }

    #[test]
    fn deny_by_default() {
        let b = binding();
        assert!(decide_ids(&b, 1000, 1000, &[]).is_ok(), "allowed user");
        assert!(decide_ids(&b, 7, 33, &[]).is_ok(), "primary group");
        assert!(
            decide_ids(&b, 7, 7, &[9, 50]).is_ok(),
            "supplementary group"
        );
        let reason = decide_ids(&b, 7, 7, &[9]).unwrap_err();
        assert!(
            reason.contains("uid 7 may not fetch binding `http`"),
            "{reason}"
        );
        assert!(
            decide_ids(&b, 0, 0, &[0]).is_err(),
            "root gets no exception"
        );
    }

    #[test]
    fn ranges_admit_their_ids_and_no_other() {
        let mut b = binding();
        b.allow_users = vec![resolve_user_range("100000-165535").unwrap()];
        b.allow_groups = vec![resolve_group_range("200000-265535").unwrap()];
        for uid in [100000, 123456, 165535] {
            assert!(decide_ids(&b, uid, 7, &[]).is_ok(), "uid {uid}");
        }
        for uid in [99999, 165536] {
            let reason = decide_ids(&b, uid, 7, &[9]).unwrap_err();
            assert!(
                reason.starts_with(&format!("uid {uid} may not fetch binding `http`")),
                "{reason}"
            );
        }
        assert!(
            decide_ids(&b, 7, 200000, &[]).is_ok(),
            "primary gid in range"
        );
        assert!(
            decide_ids(&b, 7, 7, &[265535]).is_ok(),
            "supplementary gid in range"
        );
        assert!(decide_ids(&b, 7, 7, &[265536]).is_err());
        assert!(decide_ids(&b, 0, 0, &[0]).is_err(), "a range never holds 0");
    }
}
