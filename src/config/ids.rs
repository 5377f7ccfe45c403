//! User and group ids as the configuration names them: names resolved through NSS with nix
//! (never the `users` crate), numbers, and ranges of numbers (`100000-165535`, a rootless
//! container's subordinate ids as /etc/subuid allots them).

use std::fmt;

use nix::unistd::{Gid, Group, Uid, User};

/// The largest id a range may name: the kernel reads 4294967295, `(uid_t)-1`, as "no id".
pub const MAX_ID: u32 = u32::MAX - 1;

/// The most ids one range may hold: 2^31, the largest subordinate range in common use
/// (Podman's `containers:2147483647:2147483648` for `--userns=auto`, which ends at
/// [`MAX_ID`]). More would admit most of the id space, which no container needs.
pub const MAX_RANGE_LEN: u64 = 1 << 31;

/// A numeric user or group id: [`Uid`] or [`Gid`].
pub trait Id: Copy {
    /// `uid` or `gid`, for messages.
    const KIND: &'static str;
    /// Where the subordinate ids of this kind are allotted.
    const SUBORDINATE_FILE: &'static str;
    /// What id 0 is.
    const ROOT: &'static str;
    /// The number.
    fn raw(self) -> u32;
    /// The id of a number.
    fn from_raw(raw: u32) -> Self;
}

impl Id for Uid {
    const KIND: &'static str = "uid";
    const SUBORDINATE_FILE: &'static str = "/etc/subuid";
    const ROOT: &'static str = "root";
    fn raw(self) -> u32 {
        self.as_raw()
    }
    fn from_raw(raw: u32) -> Self {
        Uid::from_raw(raw)
    }
}

impl Id for Gid {
    const KIND: &'static str = "gid";
    const SUBORDINATE_FILE: &'static str = "/etc/subgid";
    const ROOT: &'static str = "root's group";
    fn raw(self) -> u32 {
        self.as_raw()
    }
    fn from_raw(raw: u32) -> Self {
        Gid::from_raw(raw)
    }
}

/// An inclusive range of ids from `allow_users` or `allow_groups`: one id (a name or a
/// number), or `FIRST-LAST`. It never holds id 0 unless it is exactly `0`, named alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange<T> {
    first: T,
    last: T,
}

impl<T: Id> IdRange<T> {
    /// The range of one id.
    pub fn single(id: T) -> IdRange<T> {
        IdRange {
            first: id,
            last: id,
        }
    }

    /// The lowest id in the range.
    pub fn first(&self) -> T {
        self.first
    }

    /// The highest id in the range.
    pub fn last(&self) -> T {
        self.last
    }

    /// Whether `id` is in the range.
    pub fn contains(&self, id: T) -> bool {
        (self.first.raw()..=self.last.raw()).contains(&id.raw())
    }
}

impl<T: Id> fmt::Display for IdRange<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.first.raw(), self.last.raw()) {
            (first, last) if first == last => write!(f, "{first}"),
            (first, last) => write!(f, "{first}-{last}"),
        }
    }
}

/// Reads `FIRST-LAST` (two decimal ids, the lower first). `None` when `text` is not written
/// as a range (it does not start with a digit or has no `-`: a name or one number);
/// `Some(Err)` with a sentence saying what is wrong and what to write instead.
pub fn parse_range<T: Id>(text: &str) -> Option<Result<IdRange<T>, String>> {
    if !text.starts_with(|c: char| c.is_ascii_digit()) || !text.contains('-') {
        return None;
    }
    let (kind, file) = (T::KIND, T::SUBORDINATE_FILE);
    let bounds = text.split_once('-').and_then(|(first, last)| {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        (digits(first) && digits(last)).then_some((first, last))
    });
    let Some((first, last)) = bounds else {
        return Some(Err(format!(
            "`{text}` is not an id range: write FIRST-LAST, two decimal {kind}s with the lower \
             first, e.g. \"100000-165535\" for `alice:100000:65536` in {file}"
        )));
    };
    let bound = |digits: &str| match digits.parse::<u32>() {
        Ok(n) if n <= MAX_ID => Ok(n),
        _ => Err(format!(
            "`{text}`: {digits} is not a {kind}: the largest is {MAX_ID}"
        )),
    };
    let (first, last) = match (bound(first), bound(last)) {
        (Ok(first), Ok(last)) => (first, last),
        (Err(e), _) | (_, Err(e)) => return Some(Err(e)),
    };
    let len = (u64::from(last) + 1).saturating_sub(u64::from(first));
    Some(if first > last {
        Err(format!(
            "`{text}` is backwards: write the lower {kind} first, `{last}-{first}`"
        ))
    } else if first == 0 {
        Err(format!(
            "`{text}` contains {kind} 0 ({root}): a range must start at 1 or above. A range \
             names ids as the daemon sees them, the host side of {file} (`alice:100000:65536` \
             is 100000-165535), not the ids inside a container; to admit {root} itself, \
             write `0` alone",
            root = T::ROOT
        ))
    } else if len > MAX_RANGE_LEN {
        Err(format!(
            "`{text}` holds {len} {kind}s; one range may hold at most {MAX_RANGE_LEN}: list \
             the subordinate ranges you mean one by one (from {file})"
        ))
    } else {
        Ok(IdRange {
            first: T::from_raw(first),
            last: T::from_raw(last),
        })
    })
}

/// An `allow_users` entry: a range (`100000-165535`), or a user name or uid as
/// [`resolve_user`] reads it.
pub fn resolve_user_range(text: &str) -> Result<IdRange<Uid>, String> {
    parse_range(text).unwrap_or_else(|| resolve_user(text).map(|user| IdRange::single(user.uid)))
}

/// An `allow_groups` entry: a range (`100000-165535`), or a group name or gid as
/// [`resolve_group`] reads it.
pub fn resolve_group_range(text: &str) -> Result<IdRange<Gid>, String> {
    parse_range(text).unwrap_or_else(|| resolve_group(text).map(|group| IdRange::single(group.gid)))
}

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
    fn ranges_are_read_with_their_bounds() {
        let r = resolve_user_range("100000-165535").unwrap();
        assert_eq!(
            (r.first(), r.last()),
            (Uid::from_raw(100000), Uid::from_raw(165535))
        );
        assert!(r.contains(Uid::from_raw(100000)) && r.contains(Uid::from_raw(165535)));
        assert!(!r.contains(Uid::from_raw(99999)) && !r.contains(Uid::from_raw(165536)));
        assert_eq!(r.to_string(), "100000-165535");
        let one = resolve_group_range("7-7").unwrap();
        assert_eq!(
            (one, one.to_string()),
            (IdRange::single(Gid::from_raw(7)), "7".into())
        );
        // The largest range: Podman's --userns=auto allotment, up to the largest id.
        let auto = resolve_user_range("2147483647-4294967294").unwrap();
        assert!(auto.contains(Uid::from_raw(MAX_ID)));
        // Names and single numbers are not ranges.
        assert_eq!(
            resolve_user_range("root").unwrap(),
            IdRange::single(Uid::from_raw(0))
        );
        assert_eq!(
            resolve_group_range("0").unwrap(),
            IdRange::single(Gid::from_raw(0))
        );
        assert!(parse_range::<Uid>("www-data").is_none());
    }

    #[test]
    fn bad_ranges_say_what_to_write() {
        let err = |text: &str| resolve_user_range(text).unwrap_err();
        for text in ["100000-", "100000-x", "1-2-3", "100000 -165535", "1e5-2e5"] {
            assert!(
                err(text).contains("is not an id range: write FIRST-LAST"),
                "{text}: {}",
                err(text)
            );
        }
        assert!(
            err("165535-100000")
                .contains("is backwards: write the lower uid first, `100000-165535`")
        );
        let zero = err("0-65535");
        assert!(
            zero.contains("contains uid 0 (root)") && zero.contains("/etc/subuid"),
            "{zero}"
        );
        assert!(err("0-0").contains("contains uid 0"));
        assert!(
            resolve_group_range("0-9")
                .unwrap_err()
                .contains("gid 0 (root's group)")
        );
        assert!(err("1-4294967295").contains("4294967295 is not a uid: the largest is 4294967294"));
        assert!(err("1-99999999999").contains("99999999999 is not a uid"));
        assert!(
            err("1-4294967294")
                .contains("holds 4294967294 uids; one range may hold at most 2147483648")
        );
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
