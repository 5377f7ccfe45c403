//! The access decision: deny by default, from kernel credentials only.

use crate::config::Binding;
use crate::serve::grant::peer::Peer;

/// Whether the uid or the primary gid alone admits `peer`; when it does, the supplementary
/// groups need not be read.
pub fn admits_by_ids(binding: &Binding, peer: &Peer) -> bool {
    binding.allow_users.contains(&peer.uid) || binding.allow_groups.contains(&peer.gid)
}

/// Grants `peer` access to `binding` when its uid is an allowed user, or its gid or one of
/// its supplementary groups is an allowed group (the socket's group always is). uid 0 gets
/// no exception. `Err` holds the reason sent to the peer and logged.
pub fn decide(binding: &Binding, peer: &Peer) -> Result<(), String> {
    if admits_by_ids(binding, peer) {
        return Ok(());
    }
    let allowed_group = std::iter::once(&peer.gid)
        .chain(&peer.groups)
        .any(|g| binding.allow_groups.contains(g));
    if binding.allow_users.contains(&peer.uid) || allowed_group {
        return Ok(());
    }
    Err(format!(
        "uid {} may not fetch binding `{}`: it is not an allowed user and none of its groups is allowed",
        peer.uid, binding.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ids::GroupId;
    use nix::unistd::{Gid, Uid};

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
            allow_users: vec![Uid::from_raw(1000)],
            allow_groups: vec![Gid::from_raw(33), Gid::from_raw(50)],
            options: Default::default(),
        }
    }

    fn peer(uid: u32, gid: u32, groups: &[u32]) -> Peer {
        Peer {
            pid: 1,
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(gid),
            groups: groups.iter().copied().map(Gid::from_raw).collect(),
        }
    }

    #[test]
    fn deny_by_default() {
        let b = binding();
        assert!(decide(&b, &peer(1000, 1000, &[])).is_ok(), "allowed user");
        assert!(decide(&b, &peer(7, 33, &[])).is_ok(), "primary group");
        assert!(
            decide(&b, &peer(7, 7, &[9, 50])).is_ok(),
            "supplementary group"
        );
        let reason = decide(&b, &peer(7, 7, &[9])).unwrap_err();
        assert!(
            reason.contains("uid 7 may not fetch binding `http`"),
            "{reason}"
        );
        assert!(
            decide(&b, &peer(0, 0, &[0])).is_err(),
            "root gets no exception"
        );
    }
}
