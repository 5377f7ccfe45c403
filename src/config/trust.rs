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
