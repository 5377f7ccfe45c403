//! User and group names: resolved through NSS with nix (never the `users` crate).

use nix::unistd::{Gid, Group, Uid, User};

/// A user resolved from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserId {
    /// The name as configured (or the numeric id as text).
    pub name: String,
    /// The numeric user id.
    pub uid: Uid,
    /// The user's primary group, when the passwd entry exists.
    pub gid: Option<Gid>,
}

/// A group resolved from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupId {
    /// The name as configured (or the numeric id as text).
    pub name: String,
    /// The numeric group id.
    pub gid: Gid,
}

/// Resolves a user name, or a numeric uid given as digits (which need not have a
/// passwd entry). `Err` carries a sentence that says what is wrong and what to do.
pub fn resolve_user(text: &str) -> Result<UserId, String> {
    if let Ok(raw) = text.parse::<u32>() {
        let uid = Uid::from_raw(raw);
        let gid = User::from_uid(uid).ok().flatten().map(|u| u.gid);
        return Ok(UserId {
            name: text.to_owned(),
            uid,
            gid,
        });
    }
    match User::from_name(text) {
        Ok(Some(user)) => Ok(UserId {
            name: user.name,
            uid: user.uid,
            gid: Some(user.gid),
        }),
        Ok(None) => Err(format!(
            "no such user `{text}`: create it (e.g. `useradd --system {text}`) or name another user"
        )),
        Err(e) => Err(format!("cannot look up user `{text}`: {e}")),
    }
}

/// Resolves a group name, or a numeric gid given as digits.
pub fn resolve_group(text: &str) -> Result<GroupId, String> {
    if let Ok(raw) = text.parse::<u32>() {
        return Ok(GroupId {
            name: text.to_owned(),
            gid: Gid::from_raw(raw),
        });
    }
    match Group::from_name(text) {
        Ok(Some(group)) => Ok(GroupId {
            name: group.name,
            gid: group.gid,
        }),
        Ok(None) => Err(format!(
            "no such group `{text}`: create it (e.g. `groupadd --system {text}`) or name another group"
        )),
        Err(e) => Err(format!("cannot look up group `{text}`: {e}")),
    }
}

/// The name of a uid for log lines, or `None` when it has no passwd entry.
pub fn user_name(uid: Uid) -> Option<String> {
    User::from_uid(uid).ok().flatten().map(|u| u.name)
}

/// The name of a gid for log lines, falling back to the number.
pub fn group_name(gid: Gid) -> String {
    Group::from_gid(gid)
        .ok()
        .flatten()
        .map_or_else(|| gid.to_string(), |g| g.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_root_and_numbers() {
        let root = resolve_user("root").unwrap();
        assert_eq!(root.uid, Uid::from_raw(0));
        assert_eq!(root.gid, Some(Gid::from_raw(0)));
        assert_eq!(resolve_user("4242").unwrap().uid, Uid::from_raw(4242));
        assert_eq!(resolve_group("0").unwrap().gid, Gid::from_raw(0));
        assert_eq!(resolve_group("root").unwrap().gid, Gid::from_raw(0));
        assert_eq!(user_name(Uid::from_raw(0)).as_deref(), Some("root"));
    }

    #[test]
    fn unknown_names_say_what_to_do() {
        let err = resolve_user("no-such-user-pb").unwrap_err();
        assert!(
            err.contains("no such user `no-such-user-pb`") && err.contains("useradd"),
            "{err}"
        );
        let err = resolve_group("no-such-group-pb").unwrap_err();
        assert!(err.contains("no such group `no-such-group-pb`"), "{err}");
    }
}
