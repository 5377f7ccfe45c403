//! What the audit rate limiter counts and how it reports what it held back: the kinds of
//! event, their keys (kind, binding, uid), and the `event=suppressed` lines, one per uid
//! that went beyond its own limit and one per (kind, binding) for the events folded
//! together beyond the binding's limit.

use crate::serve::audit::Line;

/// What an audit event is, for the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A grant sent.
    Grant,
    /// A denial.
    Deny,
    /// A grant or denial that could not be sent.
    SendFailed,
    /// An error of the serve loop (accept, SO_PEERCRED).
    Error,
}

impl Kind {
    /// The `kind=` of a suppressed line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Grant => "grant",
            Kind::Deny => "deny",
            Kind::SendFailed => "send-failed",
            Kind::Error => "error",
        }
    }
}

/// One event: its kind, the index of its binding, and the peer's uid (`None` when there is
/// no peer, as for an accept error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The kind of event.
    pub kind: Kind,
    /// The binding's index in the configuration.
    pub binding: usize,
    /// The peer's uid.
    pub uid: Option<u32>,
}

/// A count of events that were not logged one by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// One uid's events beyond its own limit.
    Uid {
        /// Kind, binding and uid.
        key: Key,
        /// Events not logged.
        count: u64,
    },
    /// Events of several uids beyond the (kind, binding) limit, or without room in the table.
    Folded {
        /// The kind of event.
        kind: Kind,
        /// The binding's index.
        binding: usize,
        /// Events not logged.
        count: u64,
        /// Distinct uids among them that were tracked.
        uids: usize,
        /// Events whose uid could not be tracked (the uid table was full): the distinct
        /// uids are then between `uids` and `uids + untracked`.
        untracked: u64,
        /// The uid of the first folded event (`None` for events without a peer).
        first_uid: Option<u32>,
        /// The uid of the last folded event.
        last_uid: Option<u32>,
    },
}

impl Report {
    /// The `event=suppressed` line, with the binding's name.
    pub fn line(&self, binding_name: &str) -> Line {
        match self {
            Report::Uid { key, count } => {
                let mut line = Line::new("suppressed")
                    .field("kind", key.kind.as_str())
                    .field("binding", binding_name);
                if let Some(uid) = key.uid {
                    line = line.field("uid", uid);
                }
                line.field("count", count)
            }
            Report::Folded {
                kind,
                count,
                uids,
                untracked,
                first_uid,
                last_uid,
                ..
            } => {
                let mut line = Line::new("suppressed")
                    .field("kind", kind.as_str())
                    .field("binding", binding_name)
                    .field("count", count)
                    .field("uids", uids);
                if *untracked > 0 {
                    line = line.field("untracked", untracked);
                }
                let uid = |u: &Option<u32>| u.map_or_else(|| "-".to_owned(), |u| u.to_string());
                line.field("first_uid", uid(first_uid))
                    .field("last_uid", uid(last_uid))
            }
        }
    }

    /// The binding's index.
    pub fn binding(&self) -> usize {
        match self {
            Report::Uid { key, .. } => key.binding,
            Report::Folded { binding, .. } => *binding,
        }
    }
}
