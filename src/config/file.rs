//! Reading the configuration file: opened once, checked for trust on the open descriptor
//! (for `serve`), then parsed with unknown keys refused.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::unistd::Uid;

use super::error::ConfigError;
use super::raw::Raw;
use super::trust;

/// Which configuration files [`read_file`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Any readable file: `check` validates drafts wherever they lie.
    Any,
    /// Only a file that no one but root or the given user could have changed: not one
    /// someone else owns or that its group or others may write, nor one in a directory
    /// they could write to (a sticky directory such as /tmp excepted), as sshd and sudo do.
    /// `serve` reads with this, naming the user it was started as (root, or the run user
    /// under systemd's `User=`), also when it reads the file again after the drop.
    RootOr(Uid),
}

/// Reads and parses a configuration file (no validation yet).
pub fn read_file(path: &Path, trust: Trust) -> Result<Raw, ConfigError> {
    let read = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let owner = match trust {
        Trust::Any => None,
        Trust::RootOr(uid) => Some(uid),
    };
    let mut file = File::options()
        .read(true)
        // Never block on a FIFO put where the file should be; it is refused below.
        .custom_flags(if owner.is_some() { libc::O_NONBLOCK } else { 0 })
        .open(path)
        .map_err(read)?;
    if let Some(owner) = owner {
        if let Some((problem, fix)) = untrusted(path, &file, owner).map_err(read)? {
            return Err(ConfigError::Untrusted {
                path: path.to_owned(),
                problem,
                fix,
            });
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read)?;
    parse(&text, path)
}

/// What makes the open configuration `file` untrustworthy, and the fix, if anything: its
/// type, owner or mode, or the owner or mode of a directory on its real path (read from
/// /proc/self/fd, so the file checked is the file read, whatever symlinks led to it), or of a
/// directory that `given`, the path as named, is looked up in on the way (whoever can change
/// one could put another file or link there for the next read).
fn untrusted(given: &Path, file: &File, owner: Uid) -> std::io::Result<Option<(String, String)>> {
    let trusted = |uid: u32| uid == 0 || uid == owner.as_raw();
    let meta = file.metadata()?;
    let real = trust::real_path(file.as_fd())?;
    if !meta.is_file() {
        let fix = "point --config at the file itself".to_owned();
        return Ok(Some(("it is not a regular file".to_owned(), fix)));
    }
    if let Some(found) = trust::judge(&real, meta.uid(), meta.mode(), &trusted, false) {
        return Ok(Some((format!("it is {}", found.problem), found.fix)));
    }
    if let Some(parent) = real.parent() {
        if let Some(found) = trust::first_untrusted_dir(parent, &trusted)? {
            let dir = found.path.display();
            let fix = found.fix.trim_end_matches('`');
            return Ok(Some((
                format!(
                    "the directory {dir} on its path is {}, so the file could be replaced",
                    found.problem
                ),
                format!("{fix}`, or move the file"),
            )));
        }
    }
    // The path as given: the directories it is looked up in, links included (none other than
    // the real path's, judged above, when it is the real path).
    if given == real {
        return Ok(None);
    }
    let Some(found) = trust::first_untrusted_on_the_way(given, &trusted)? else {
        return Ok(None);
    };
    let fix = found.fix.trim_end_matches('`');
    let shown = found.path.display();
    Ok(Some((
        format!("{shown} is {}", found.problem),
        format!(
            "{fix}`, or name the file by its real path {}",
            real.display()
        ),
    )))
}

/// Parses configuration text read from `path` (no validation yet).
pub fn parse(text: &str, path: &Path) -> Result<Raw, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let table = e
            .span()
            .and_then(|span| enclosing_binding(text, span.start));
        let message = e.to_string().trim_end().to_owned();
        ConfigError::Parse {
            path: path.to_owned(),
            message: match table {
                Some(name) => format!("binding `{name}`: {message}"),
                None => message,
            },
        }
    })
}

/// The name of the `[binding.NAME]` table that contains byte `offset` of `text`, so a
/// parse error (an unknown key, a wrong type) names its binding too.
fn enclosing_binding(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset)?;
    let header = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))?;
    let name = header.strip_prefix("[binding.")?.strip_suffix(']')?;
    Some(name.trim().trim_matches('"').to_owned())
}
