//! The configuration read again, after the drop: through the very `load` that read it at
//! start-up (the same file, flags and trust check, `Trust::RootOr` the uid the daemon started
//! as), but as the run user and inside the sandbox. Name lookups read /etc/passwd and
//! /etc/group only there (src/serve/sandbox/). What goes wrong is one line that names the file
//! and the fix, for the audit log and STATUS=.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::config::{Config, ConfigError, ids};

/// Reads the configuration through `load`; `served` is the one in force (for the run user
/// and its group the messages name). `Err` is the reason the reload is refused.
pub fn read(
    load: &dyn Fn() -> Result<Config, ConfigError>,
    served: &Config,
) -> Result<Config, String> {
    load().map_err(|error| explain(&error, served))
}

/// `error` as one line.
fn explain(error: &ConfigError, served: &Config) -> String {
    match error {
        ConfigError::Read { path, source } if source.kind() == ErrorKind::PermissionDenied => {
            unreadable(path, source, served)
        }
        ConfigError::Invalid { origin, problems } => {
            format!("invalid configuration ({origin}): {}", problems.join("; "))
        }
        other => one_line(other),
    }
}

/// Why the run user cannot open `path`, and the fix: the packaged file is 0644, but one
/// written 0600 by root was read at start-up as root and cannot be read now.
fn unreadable(path: &Path, source: &std::io::Error, served: &Config) -> String {
    let file = path.display();
    let head = format!("cannot read configuration file {file}: {source}");
    if permissions_allow(path, served) && in_root(path) {
        // The sandbox's rule is on the file it started with (src/serve/sandbox/mod.rs).
        return format!(
            "{head}: the file is in /, so the sandbox lets the daemon read only the very file \
             it started with (and /etc), not a new one renamed over it: edit it in place \
             (`cp NEW {file}` writes into it), or move it to /etc/portbinder/ and restart"
        );
    }
    if permissions_allow(path, served) {
        // The file's mode lets the run user read it: the sandbox refused the path.
        return format!(
            "{head}: the sandbox lets the daemon read only /etc and the directory the file was \
             in when the daemon started: put it back there, or restart to read it where it is"
        );
    }
    let user = &served.user.name;
    let group = ids::group_name(served.user_gid);
    format!(
        "{head}: the daemon reads it again as its user `{user}`, having given up root, and \
         the file (or a directory on its path) does not let that user read it: \
         `chgrp {group} {file} && chmod 0640 {file}`, or `chmod 0644 {file}` as packaged (it \
         holds no secret)"
    )
}

/// Whether the file `path` names lies right in `/`, where the sandbox's read rule is on the
/// file rather than its directory.
fn in_root(path: &Path) -> bool {
    let real = std::fs::canonicalize(path).ok().or_else(|| {
        Some(
            std::fs::canonicalize(path.parent()?)
                .ok()?
                .join(path.file_name()?),
        )
    });
    real.is_some_and(|real| real.parent() == Some(Path::new("/")))
}

/// Whether the mode of `path` lets the run user read it (as its owner, through its primary
/// group, or as anyone).
fn permissions_allow(path: &Path, served: &Config) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let mode = meta.mode();
    (meta.uid() == served.user.uid.as_raw() && mode & 0o400 != 0)
        || (meta.gid() == served.user_gid.as_raw() && mode & 0o040 != 0)
        || mode & 0o004 != 0
}

/// The error and its causes on one line, multi-line messages (toml's, with the offending
/// text) joined with spaces.
fn one_line(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text = format!("{text}: {e}");
        cause = e.source();
    }
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Origin, parse, validate};
    use std::os::unix::fs::PermissionsExt;

    fn served() -> Config {
        let text = "user = \"nobody\"\n[binding.http]\nlisten = [\"127.0.0.1:80\"]\ngroup = \"www-data\"\n";
        let raw = parse(text, Path::new("t.toml")).unwrap();
        validate(raw, Origin::File("t.toml".into())).unwrap()
    }

    #[test]
    fn a_file_the_run_user_may_not_read_gets_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let denied = std::io::Error::from(ErrorKind::PermissionDenied);
        let text = unreadable(&path, &denied, &served());
        let file = path.display();
        assert!(
            text.contains(&format!(
                "`chgrp nogroup {file} && chmod 0640 {file}`, or `chmod 0644 {file}`"
            )),
            "{text}"
        );
        assert!(text.contains("as its user `nobody`"), "{text}");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = unreadable(&path, &denied, &served());
        assert!(
            text.contains("the sandbox lets the daemon read only"),
            "{text}"
        );
    }

    #[test]
    fn errors_are_one_line() {
        let error = parse("[binding.http\n", Path::new("/etc/p.toml")).unwrap_err();
        let text = explain(&error, &served());
        assert!(
            text.starts_with("invalid configuration file /etc/p.toml: "),
            "{text}"
        );
        assert!(!text.contains('\n'), "{text}");
        let invalid = ConfigError::Invalid {
            origin: Origin::File("/etc/p.toml".into()),
            problems: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            explain(&invalid, &served()),
            "invalid configuration (/etc/p.toml): a; b"
        );
    }
}
