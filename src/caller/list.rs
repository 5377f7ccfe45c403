//! `portbinder list`: the bindings on offer in the socket directory, and whether the
//! caller may fetch each, judged from the socket files and the caller's groups alone (no
//! connection is made, and the root-only configuration is not read).

use std::fmt::Write;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::unistd::{Gid, Uid, getgroups};

/// One socket file in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The binding's name (the file name without `.sock`).
    pub name: String,
    /// The socket's group.
    pub gid: u32,
    /// The socket's permission bits.
    pub mode: u32,
    /// Whether the caller may fetch it.
    pub access: Access,
}

/// What the caller can expect when fetching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The caller is in the socket's group, which the daemon always allows.
    Yes(String),
    /// The file lets the caller connect, but only the daemon's configuration decides.
    Maybe(String),
    /// The file's permissions keep the caller out.
    No(String),
}

/// Who is asking: uid, gid and supplementary groups.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Real uid.
    pub uid: Uid,
    /// Real gid.
    pub gid: Gid,
    /// Supplementary groups.
    pub groups: Vec<Gid>,
}

impl Caller {
    /// The calling process.
    pub fn current() -> Caller {
        Caller {
            uid: Uid::current(),
            gid: Gid::current(),
            groups: getgroups().unwrap_or_default(),
        }
    }
}

/// Lists `<dir>/*.sock`, sorted by name.
pub fn list(dir: &Path, caller: &Caller) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        let file_name = item.file_name();
        let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(".sock")) else {
            continue;
        };
        let meta = match item.path().symlink_metadata() {
            Ok(meta) if meta.file_type().is_socket() => meta,
            _ => continue,
        };
        let mode = meta.mode() & 0o7777;
        entries.push(Entry {
            name: name.to_owned(),
            gid: meta.gid(),
            mode,
            access: judge(caller, meta.uid(), meta.gid(), mode),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// Connecting needs write permission on the socket file; the daemon then always admits
/// members of the socket's group, and decides everyone else from its configuration.
pub fn judge(caller: &Caller, owner: u32, group: u32, mode: u32) -> Access {
    let group_name = crate::config::ids::group_name(Gid::from_raw(group));
    let member = caller.gid.as_raw() == group || caller.groups.iter().any(|g| g.as_raw() == group);
    if caller.uid.is_root() {
        return Access::Maybe(
            "root can connect, but is only granted if the configuration allows it".into(),
        );
    }
    if caller.uid.as_raw() == owner {
        return Access::Maybe(
            "you own the socket (you are the daemon's user); the configuration decides".into(),
        );
    }
    if member {
        return if mode & 0o020 != 0 {
            Access::Yes(format!("member of {group_name}"))
        } else {
            Access::No(format!(
                "member of {group_name}, but the mode does not let the group connect"
            ))
        };
    }
    if mode & 0o002 != 0 {
        Access::Maybe("anyone can connect; the configuration decides".into())
    } else {
        Access::No(format!("not a member of {group_name}"))
    }
}

/// The table printed by `portbinder list`.
pub fn render(entries: &[Entry]) -> String {
    let mut out = String::new();
    let rows: Vec<[String; 4]> = entries
        .iter()
        .map(|e| {
            let access = match &e.access {
                Access::Yes(why) => format!("yes: {why}"),
                Access::Maybe(why) => format!("maybe: {why}"),
                Access::No(why) => format!("no: {why}"),
            };
            [
                e.name.clone(),
                crate::config::ids::group_name(Gid::from_raw(e.gid)),
                format!("{:04o}", e.mode),
                access,
            ]
        })
        .collect();
    let header = [
        "BINDING".to_owned(),
        "GROUP".into(),
        "MODE".into(),
        "FETCH".into(),
    ];
    let width = |i: usize| {
        rows.iter()
            .chain([&header])
            .map(|r| r[i].len())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1) = (width(0), width(1));
    for row in std::iter::once(&header).chain(&rows) {
        let _ = writeln!(
            out,
            "{:w0$}  {:w1$}  {}  {}",
            row[0], row[1], row[2], row[3]
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(uid: u32, gid: u32, groups: &[u32]) -> Caller {
        Caller {
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(gid),
            groups: groups.iter().copied().map(Gid::from_raw).collect(),
        }
    }

    #[test]
    fn judges_from_mode_and_groups() {
        assert!(matches!(
            judge(&caller(1000, 33, &[]), 65534, 33, 0o660),
            Access::Yes(_)
        ));
        assert!(matches!(
            judge(&caller(1000, 1000, &[33]), 65534, 33, 0o660),
            Access::Yes(_)
        ));
        assert!(matches!(
            judge(&caller(1000, 1000, &[33]), 65534, 33, 0o600),
            Access::No(_)
        ));
        assert!(matches!(
            judge(&caller(1000, 1000, &[]), 65534, 33, 0o660),
            Access::No(_)
        ));
        assert!(matches!(
            judge(&caller(1000, 1000, &[]), 65534, 33, 0o666),
            Access::Maybe(_)
        ));
        assert!(matches!(
            judge(&caller(0, 0, &[]), 65534, 33, 0o660),
            Access::Maybe(_)
        ));
    }
}
