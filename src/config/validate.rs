//! Validation of a parsed configuration: every problem is collected, each naming its
//! binding and field, so `portbinder check` shows them all at once.

mod options;

use std::path::PathBuf;

use nix::unistd::Gid;

use super::address::ListenAddr;
use super::error::{ConfigError, Origin};
use super::ids::{IdRange, resolve_group, resolve_group_range, resolve_user, resolve_user_range};
use super::model::{
    Binding, Config, DEFAULT_BACKLOG, DEFAULT_MODE, DEFAULT_SOCKET_DIR, DEFAULT_USER, MAX_ADDRESSES,
};
use super::raw::{Facility, LogTarget, Mode, Raw, RawBinding};

/// The longest Unix socket path the kernel accepts (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn global(&mut self, field: &str, what: impl std::fmt::Display) {
        self.0.push(format!("field `{field}`: {what}"));
    }
    fn binding(&mut self, name: &str, field: &str, what: impl std::fmt::Display) {
        self.0
            .push(format!("binding `{name}`: field `{field}`: {what}"));
    }
}

/// Validates `raw` and resolves every user and group name.
pub fn validate(raw: Raw, origin: Origin) -> Result<Config, ConfigError> {
    let mut problems = Problems::default();

    let user_text = raw.user.unwrap_or_else(|| DEFAULT_USER.to_owned());
    let user = match resolve_user(&user_text) {
        Ok(user) if user.uid.is_root() => {
            problems.global(
                "user",
                format!("`{user_text}` is uid 0: portbinder must drop to an unprivileged user"),
            );
            None
        }
        Ok(user) if user.gid.is_some_and(|g| g.as_raw() == 0) => {
            problems.global(
                "user",
                format!("`{user_text}` has primary group 0 (root): give it a group of its own"),
            );
            None
        }
        Ok(user) if user.gid.is_none() => {
            problems.global("user", format!("uid {} has no passwd entry, so it has no primary group: name a user that exists", user.uid));
            None
        }
        Ok(user) => Some(user),
        Err(e) => {
            problems.global("user", e);
            None
        }
    };

    let socket_dir = raw
        .socket_dir
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET_DIR));
    if !socket_dir.is_absolute() {
        problems.global(
            "socket_dir",
            format!("`{}` is not an absolute path", socket_dir.display()),
        );
    }

    if raw.binding.is_empty() {
        problems.0.push(
            "no bindings: add a [binding.NAME] table with `listen` and `group` (or use --bind)"
                .to_owned(),
        );
    }
    let mut bindings = Vec::with_capacity(raw.binding.len());
    for (name, raw_binding) in raw.binding {
        if let Some(binding) = binding(&name, raw_binding, &socket_dir, &mut problems) {
            bindings.push(binding);
        }
    }
    find_conflicts(&bindings, &mut problems);

    match user {
        Some(user) if problems.0.is_empty() => Ok(Config {
            origin,
            user_gid: user.gid.unwrap_or(Gid::from_raw(0)),
            user,
            socket_dir,
            log: raw.log.unwrap_or(LogTarget::Syslog),
            facility: raw.facility.unwrap_or(Facility::Authpriv),
            bindings,
        }),
        _ => Err(ConfigError::Invalid {
            origin,
            problems: problems.0,
        }),
    }
}

fn binding(
    name: &str,
    raw: RawBinding,
    socket_dir: &std::path::Path,
    problems: &mut Problems,
) -> Option<Binding> {
    let before = problems.0.len();
    if !super::model::is_valid_name(name) {
        problems.0.push(format!(
            "binding `{}`: the name must be 1 to 64 characters of a-z, 0-9, `_` and `-` (it names the socket file)",
            name.escape_debug()
        ));
        return None;
    }
    let path_len = socket_dir.as_os_str().len() + name.len() + "/.sock".len();
    if path_len > MAX_SOCKET_PATH {
        problems.binding(name, "name", format!(
            "the socket path in `{}` would be {path_len} bytes; Unix sockets allow {MAX_SOCKET_PATH}: use a shorter socket_dir or name",
            socket_dir.display()
        ));
    }

    let mut listen = Vec::new();
    if raw.listen.is_empty() {
        problems.binding(
            name,
            "listen",
            "no addresses: give at least one, e.g. [\"0.0.0.0:80\"]",
        );
    } else if raw.listen.len() > MAX_ADDRESSES {
        problems.binding(
            name,
            "listen",
            format!(
                "{} addresses; at most {MAX_ADDRESSES}, the most descriptors the kernel passes in one \
                 message (SCM_MAX_FD): split them into several bindings",
                raw.listen.len()
            ),
        );
    }
    for text in &raw.listen {
        match text.parse::<ListenAddr>() {
            Ok(addr) => listen.push(addr),
            Err(e) => problems.binding(name, "listen", e),
        }
    }
    let options = options::validate(&raw, &listen)
        .map_err(|all| {
            for (field, what) in all {
                problems.binding(name, field, what);
            }
        })
        .ok();
    let v6only = options.as_ref().is_none_or(|o| o.ipv6_only);
    let mut seen: Vec<ListenAddr> = Vec::with_capacity(listen.len());
    for addr in &listen {
        match seen.iter().find(|a| a.collides_with(v6only, addr, v6only)) {
            Some(a) if a.conflicts_with(addr) => problems.binding(
                name,
                "listen",
                format!("{addr} is listed twice or overlaps another address of this binding"),
            ),
            Some(a) => {
                let (v4, v6) = if a.addr.is_ipv4() {
                    (a, addr)
                } else {
                    (addr, a)
                };
                problems.binding(
                    name,
                    "listen",
                    format!(
                        "{v4} collides with {v6}, which takes IPv4 too with `ipv6_only = false`: remove {v4} (the dual-stack socket serves it), or set `ipv6_only = true` for two sockets"
                    ),
                );
            }
            None => seen.push(*addr),
        }
    }

    let backlog = raw.backlog.unwrap_or(DEFAULT_BACKLOG);
    if backlog == 0 || backlog > libc::SOMAXCONN as u32 {
        problems.binding(
            name,
            "backlog",
            format!("{backlog} is out of range: use 1 to {}", libc::SOMAXCONN),
        );
    }

    let mode = match raw.mode.map_or(Ok(DEFAULT_MODE), parse_mode) {
        Ok(mode) => mode,
        Err(e) => {
            problems.binding(name, "mode", e);
            0
        }
    };

    let group = resolve_group(&raw.group)
        .map_err(|e| problems.binding(name, "group", e))
        .ok();
    let mut allow_users = Vec::new();
    for text in &raw.allow_users {
        match resolve_user_range(text) {
            Ok(users) => allow_users.push(users),
            Err(e) => problems.binding(name, "allow_users", e),
        }
    }
    let mut allow_groups: Vec<IdRange<Gid>> =
        group.iter().map(|g| IdRange::single(g.gid)).collect();
    for text in &raw.allow_groups {
        match resolve_group_range(text) {
            Ok(groups) => allow_groups.push(groups),
            Err(e) => problems.binding(name, "allow_groups", e),
        }
    }

    match (group, options) {
        (Some(group), Some(options)) if problems.0.len() == before => Some(Binding {
            name: name.to_owned(),
            listen,
            backlog,
            group,
            mode,
            allow_users,
            allow_groups,
            options,
        }),
        _ => None,
    }
}

/// Parses an octal permission mode: `"0660"`, `"660"` or the integer `0o660`.
fn parse_mode(mode: Mode) -> Result<u32, String> {
    let value = match &mode {
        Mode::Int(n) => u32::try_from(*n).ok(),
        Mode::Text(text) => u32::from_str_radix(text, 8)
            .ok()
            .filter(|_| !text.is_empty()),
    };
    match value {
        Some(v) if v <= 0o777 => Ok(v),
        _ => Err(format!(
            "{} is not a permission mode: write an octal string such as \"0660\" (no setuid/sticky bits)",
            match mode {
                Mode::Int(n) => format!("{n:#o}"),
                Mode::Text(t) => format!("\"{}\"", t.escape_debug()),
            }
        )),
    }
}

/// Two bindings must not ask for the same (or an overlapping) address: the second bind
/// would fail with EADDRINUSE at start-up, so `check` reports it first.
fn find_conflicts(bindings: &[Binding], problems: &mut Problems) {
    for (i, a) in bindings.iter().enumerate() {
        for b in &bindings[i + 1..] {
            let (a6, b6) = (a.options.ipv6_only, b.options.ipv6_only);
            for x in &a.listen {
                for y in b.listen.iter().filter(|y| x.collides_with(a6, y, b6)) {
                    let dual = if x.conflicts_with(y) {
                        ""
                    } else {
                        " (a dual-stack socket, `ipv6_only = false`, takes IPv4 too)"
                    };
                    problems.binding(&b.name, "listen", format!(
                        "{y} collides with {x} of binding `{}`{dual}: each address may belong to one binding only",
                        a.name
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
