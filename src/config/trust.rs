//! Who besides root could change a path: the owner and mode rules that `serve` applies to
//! its configuration file and to the directories above its socket directory. Whoever can
//! replace one of them decides who gets the privileged ports (the file) or can put another
//! directory where the daemon's sockets go (the socket directory's ancestors).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::unistd::Uid;

use super::ids;

/// Something on a path that someone else could change, and the command that fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untrusted {
    /// The file or directory.
    pub path: PathBuf,
    /// Who could change it, and how: "owned by uid 1 (daemon)", "writable by its group or
    /// by others (mode 0775)".
    pub problem: String,
    /// The command that makes it trustworthy (`chown root: PATH`, `chmod go-w PATH`).
    pub fix: String,
}

/// "uid N (name)" or "uid N".
fn owner(uid: u32) -> String {
    ids::user_name(Uid::from_raw(uid))
        .map_or(format!("uid {uid}"), |name| format!("uid {uid} ({name})"))
}

/// What is wrong with an object owned by `uid` with `mode`, if anything: another owner
/// than the `trusted` ones, or write access for group or others (unless `sticky_ok` and
/// the sticky bit is set, as on /tmp, where only an entry's owner may replace it).
pub fn judge(
    path: &Path,
    uid: u32,
    mode: u32,
    trusted: &dyn Fn(u32) -> bool,
    sticky_ok: bool,
) -> Option<Untrusted> {
    let shown = path.display();
    if !trusted(uid) {
        return Some(Untrusted {
            path: path.to_owned(),
            problem: format!("owned by {}", owner(uid)),
            fix: format!("`chown root: {shown}`"),
        });
    }
    let sticky = sticky_ok && mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky {
        return Some(Untrusted {
            path: path.to_owned(),
            problem: format!(
                "writable by its group or by others (mode {:04o})",
                mode & 0o7777
            ),
            fix: format!("`chmod go-w {shown}`"),
        });
    }
    None
}

/// The first directory, from `real` itself up to `/`, that someone other than the
/// `trusted` owners could change (sticky directories such as /tmp excepted). `real` must
/// be a real path, free of symbolic links: read it from /proc/self/fd of an open
/// descriptor, so the path judged is the object opened.
pub fn first_untrusted_dir(
    real: &Path,
    trusted: &dyn Fn(u32) -> bool,
) -> std::io::Result<Option<Untrusted>> {
    for dir in real.ancestors() {
        let meta = std::fs::symlink_metadata(dir)?;
        if let Some(found) = judge(dir, meta.uid(), meta.mode(), trusted, true) {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The first directory on the way to `given`, as the kernel resolves it (through symbolic
/// links, and links in their targets, and `..`), that someone other than the `trusted` owners
/// could change, or the first link in a sticky directory (such as /tmp) that another user
/// owns. Whoever can change a directory the lookup passes through can put another file or
/// link under the name looked up, for the next read; judging every directory looked in,
/// whatever entry it holds now, leaves no moment at which swapping an entry changes the
/// verdict.
pub fn first_untrusted_on_the_way(
    given: &Path,
    trusted: &dyn Fn(u32) -> bool,
) -> std::io::Result<Option<Untrusted>> {
    /// As the kernel's limit on the links in one lookup (ELOOP).
    const MAX_LINKS: usize = 40;
    let given = std::path::absolute(given)?;
    let on_the_way = |mut found: Untrusted| {
        found.problem = format!(
            "{}, and the path {} is looked up in it",
            found.problem,
            given.display()
        );
        Some(found)
    };
    let mut pending: Vec<PathBuf> = components(&given);
    // Always a real path: only what is not a link is appended to it.
    let mut resolved = PathBuf::from("/");
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == Path::new("..") {
            // Its parent was looked in on the way here, and judged then.
            resolved.pop();
            continue;
        }
        let dir = std::fs::symlink_metadata(&resolved)?;
        if let Some(found) = judge(&resolved, dir.uid(), dir.mode(), trusted, true) {
            return Ok(on_the_way(found));
        }
        let next = resolved.join(&part);
        let entry = std::fs::symlink_metadata(&next)?;
        if !entry.file_type().is_symlink() {
            resolved = next;
            continue;
        }
        // In a sticky directory the link's owner may replace it (a directory's owner is
        // judged when it is looked in, the file's by the caller).
        if dir.mode() & 0o1000 != 0 {
            if let Some(found) = judge(&next, entry.uid(), 0, trusted, false) {
                return Ok(on_the_way(found));
            }
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
        }
        let target = std::fs::read_link(&next)?;
        if target.is_absolute() {
            resolved = PathBuf::from("/");
        }
        pending.extend(components(&target));
    }
    Ok(None)
}

/// The named parts of `path` (`..` kept, `.` and the root dropped), last first.
fn components(path: &Path) -> Vec<PathBuf> {
    use std::path::Component;
    let mut parts: Vec<PathBuf> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(PathBuf::from(name)),
            Component::ParentDir => Some(PathBuf::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    parts.reverse();
    parts
}

/// The real path behind an open descriptor (its /proc/self/fd link).
pub fn real_path(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_and_modes() {
        let root_only = |uid: u32| uid == 0;
        let p = Path::new("/x");
        assert_eq!(judge(p, 0, 0o40755, &root_only, true), None);
        assert_eq!(judge(p, 0, 0o41777, &root_only, true), None, "sticky /tmp");
        let sticky_file = judge(p, 0, 0o41777, &root_only, false).unwrap();
        assert!(sticky_file.problem.contains("mode 1777"), "{sticky_file:?}");
        let other = judge(p, 1, 0o40755, &root_only, true).unwrap();
        assert_eq!(other.problem, "owned by uid 1 (daemon)");
        assert_eq!(other.fix, "`chown root: /x`");
        let group = judge(p, 0, 0o40775, &root_only, true).unwrap();
        assert!(group.problem.contains("mode 0775") && group.fix == "`chmod go-w /x`");
    }

    #[test]
    fn every_directory_looked_in_is_judged_through_links_and_dot_dot() {
        let base = std::env::temp_dir().join(format!("pb-trust-{}", std::process::id()));
        let (theirs, ours) = (base.join("theirs"), base.join("ours"));
        std::fs::create_dir_all(&theirs).unwrap();
        std::fs::create_dir_all(&ours).unwrap();
        std::fs::write(ours.join("file"), "").unwrap();
        std::fs::write(theirs.join("plain"), "").unwrap();
        std::os::unix::fs::symlink("../ours/file", theirs.join("link")).unwrap();
        std::os::unix::fs::symlink(theirs.join("link"), ours.join("via")).unwrap();
        std::os::unix::fs::symlink("file", ours.join("near")).unwrap();
        // `..` in `theirs` is its parent whatever its owner does: not a lookup it controls.
        std::os::unix::fs::symlink("../theirs/../ours/file", ours.join("round")).unwrap();
        // The tests run as root: `theirs` becomes daemon's (uid 1), the rest stays root's.
        std::os::unix::fs::chown(&theirs, Some(1), Some(1)).unwrap();
        let not_daemon = |uid: u32| uid != 1;
        let found = |given: &str| {
            first_untrusted_on_the_way(&ours.join(given), &not_daemon)
                .unwrap()
                .map(|u| (u.path, u.problem))
        };
        assert_eq!(found("file"), None);
        assert_eq!(found("near"), None, "a link in a trusted directory");
        assert_eq!(found("round"), None);
        for given in ["via", "../theirs/plain", "../theirs/link"] {
            let (path, problem) = found(given).unwrap_or_else(|| panic!("{given}"));
            assert_eq!(path, theirs, "{given}");
            assert!(
                problem.starts_with("owned by uid 1 (daemon), and the path"),
                "{problem}"
            );
        }
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_link_another_user_owns_in_a_sticky_directory_is_not_trusted() {
        let base = std::env::temp_dir().join(format!("pb-sticky-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        std::fs::set_permissions(&base, std::os::unix::fs::PermissionsExt::from_mode(0o1777))
            .unwrap();
        std::fs::write(base.join("file"), "").unwrap();
        let link = base.join("link");
        std::os::unix::fs::symlink("file", &link).unwrap();
        let not_daemon = |uid: u32| uid != 1;
        assert_eq!(
            first_untrusted_on_the_way(&link, &not_daemon).unwrap(),
            None
        );
        std::os::unix::fs::lchown(&link, Some(1), Some(1)).unwrap();
        let found = first_untrusted_on_the_way(&link, &not_daemon)
            .unwrap()
            .unwrap();
        assert_eq!(found.path, link);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn the_first_untrusted_ancestor_is_found() {
        let root_only = |uid: u32| uid == 0;
        assert_eq!(
            first_untrusted_dir(Path::new("/usr/bin"), &root_only).unwrap(),
            None
        );
        let nobody_only = |uid: u32| uid == 65534;
        let found = first_untrusted_dir(Path::new("/usr/bin"), &nobody_only)
            .unwrap()
            .unwrap();
        assert_eq!(found.path, Path::new("/usr/bin"));
    }
}
