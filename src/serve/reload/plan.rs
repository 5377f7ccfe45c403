//! What a reload would change: the differences between the configuration the daemon serves
//! and the file as it reads now, each either applicable without privilege or a reason to
//! refuse the whole reload. Pure: nothing here touches a socket or a file.

use crate::config::{Binding, Config, SocketOptions};
use crate::serve::options::Buffer;

/// The largest buffer granted without CAP_NET_ADMIN, in bytes, or why it cannot be known.
pub type BufferMax<'f> = dyn Fn(Buffer) -> Result<u64, String> + 'f;

/// Why a change cannot be applied by the running daemon.
pub const RESTART: &str = "restart to apply";

/// One difference, and what the reload does about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What changed: `binding `http`: allow_users`, `socket_dir`.
    pub what: String,
    /// What the reload does about it.
    pub action: Action,
}

/// What a reload does about one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Applied by the running daemon, which needs no privilege for it.
    Apply(Step),
    /// Needs a privilege the daemon gave up at start (the reason says which): the whole
    /// reload is refused.
    Refuse(String),
}

/// A change the running daemon makes, by binding index in the running configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Who may fetch: the new allow lists take effect for the next connection.
    Rules(usize),
    /// The socket file's mode (the run user owns the file).
    Mode(usize),
    /// listen(2) again with the new backlog.
    Backlog(usize),
    /// Socket options that can change on a bound socket.
    Options(usize),
    /// The binding is gone: its socket file, its sockets, its fd-store entry.
    Remove(usize),
}

/// Every difference between `old` (served) and `new` (read), in a stable order: the global
/// settings, then the bindings by name. `buffer_max` gives the largest buffer the kernel grants
/// without CAP_NET_ADMIN (`net.core.rmem_max` for `receive_buffer`, `wmem_max` for
/// `send_buffer`), or why it cannot be known. A buffer beyond it is refused, and so is one
/// whose maximum cannot be known: a buffer, once set, cannot be put back (the kernel stops
/// tuning it), so a reload sets buffers only when it knows they will be granted.
pub fn plan(old: &Config, new: &Config, buffer_max: &BufferMax<'_>) -> Vec<Change> {
    let mut changes = Vec::new();
    let refuse = |changes: &mut Vec<Change>, what: String, why: &str| {
        changes.push(Change {
            what,
            action: Action::Refuse(format!("{why}: {RESTART}")),
        })
    };
    if old.user.uid != new.user.uid {
        refuse(
            &mut changes,
            "user".into(),
            "the daemon cannot become another user",
        );
    }
    if old.socket_dir != new.socket_dir {
        let why = "a new socket directory needs CAP_CHOWN and new sockets";
        refuse(&mut changes, "socket_dir".into(), why);
    }
    if old.log != new.log || old.facility != new.facility {
        let why = "the log is opened once, before the sandbox";
        refuse(&mut changes, "log, facility".into(), why);
    }
    for b in &new.bindings {
        if !old.bindings.iter().any(|a| a.name == b.name) {
            let why = "a new binding binds new sockets, which needs CAP_NET_BIND_SERVICE";
            refuse(&mut changes, format!("binding `{}`: added", b.name), why);
        }
    }
    for (index, a) in old.bindings.iter().enumerate() {
        let label = |field: &str| format!("binding `{}`: {field}", a.name);
        let Some(b) = new.bindings.iter().find(|b| b.name == a.name) else {
            changes.push(Change {
                what: label("removed"),
                action: Action::Apply(Step::Remove(index)),
            });
            continue;
        };
        let refused = refused_binding_changes(a, b, buffer_max);
        for (field, why) in &refused {
            refuse(&mut changes, label(field), why);
        }
        let mut apply = |field: &str, changed: bool, step: Step| {
            if changed {
                changes.push(Change {
                    what: label(field),
                    action: Action::Apply(step),
                });
            }
        };
        // allow_groups starts with the socket's group, whose change is refused above.
        let further = |b: &Binding| b.allow_groups.get(1..).map(<[_]>::to_vec);
        let rules = a.allow_users != b.allow_users || further(a) != further(b);
        apply("allow_users, allow_groups", rules, Step::Rules(index));
        apply("mode", a.mode != b.mode, Step::Mode(index));
        apply("backlog", a.backlog != b.backlog, Step::Backlog(index));
        let options: Vec<&str> = changed_options(&a.options, &b.options)
            .into_iter()
            .filter(|field| !refused.iter().any(|(f, _)| f == field))
            .collect();
        apply(
            &options.join(", "),
            !options.is_empty(),
            Step::Options(index),
        );
    }
    changes
}

/// The changes to a binding that the running daemon cannot make, with why.
fn refused_binding_changes(
    a: &Binding,
    b: &Binding,
    buffer_max: &BufferMax<'_>,
) -> Vec<(&'static str, String)> {
    let (x, y) = (&a.options, &b.options);
    let mut refused = Vec::new();
    let mut check = |field, changed: bool, why: &str| {
        if changed {
            refused.push((field, why.to_owned()));
        }
    };
    let bound = "a bound socket keeps it";
    check(
        "listen",
        a.listen != b.listen,
        "new addresses need new sockets",
    );
    check(
        "group",
        a.group.gid != b.group.gid,
        "the socket file's group is set with chown, which needs CAP_CHOWN",
    );
    check("ipv6_only", x.ipv6_only != y.ipv6_only, bound);
    check("free_bind", x.free_bind != y.free_bind, bound);
    check(
        "bind_to_device",
        x.bind_to_device != y.bind_to_device,
        "changing the device of a bound socket needs CAP_NET_RAW",
    );
    check(
        "mark",
        x.mark != y.mark,
        "setting SO_MARK needs CAP_NET_ADMIN",
    );
    for which in Buffer::BOTH {
        let (old, new) = (which.of(x), which.of(y));
        let Some(bytes) = new.filter(|_| old != new) else {
            continue;
        };
        let sysctl = which.sysctl();
        let why = match buffer_max(which) {
            Ok(max) if u64::from(bytes) > max => format!(
                "{bytes} bytes is beyond {sysctl} ({max} bytes), which only CAP_NET_ADMIN \
                 passes, and the daemon gave its capabilities up at start"
            ),
            Ok(_) => continue,
            Err(why) => format!("whether {bytes} bytes needs CAP_NET_ADMIN cannot be known: {why}"),
        };
        check(which.field(), true, &why);
    }
    refused
}

/// The options a bound socket can take anew, that differ between `a` and `b`.
fn changed_options(a: &SocketOptions, b: &SocketOptions) -> Vec<&'static str> {
    [
        ("nonblocking", a.nonblocking != b.nonblocking),
        ("reuse_address", a.reuse_address != b.reuse_address),
        ("defer_accept", a.defer_accept != b.defer_accept),
        ("fast_open", a.fast_open != b.fast_open),
        ("keepalive", a.keepalive != b.keepalive),
        ("keepalive_idle", a.keepalive_idle != b.keepalive_idle),
        (
            "keepalive_interval",
            a.keepalive_interval != b.keepalive_interval,
        ),
        ("keepalive_count", a.keepalive_count != b.keepalive_count),
        ("receive_buffer", a.receive_buffer != b.receive_buffer),
        ("send_buffer", a.send_buffer != b.send_buffer),
    ]
    .into_iter()
    .filter_map(|(field, changed)| changed.then_some(field))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Origin, parse, validate};

    fn config(bindings: &str) -> Config {
        let text = format!("user = \"nobody\"\nsocket_dir = \"/run/pb\"\n{bindings}");
        let raw = parse(&text, std::path::Path::new("t.toml")).unwrap();
        validate(raw, Origin::File("t.toml".into())).unwrap()
    }

    const HTTP: &str = "[binding.http]\nlisten = [\"127.0.0.1:80\"]\ngroup = \"www-data\"\n";
    const DNS: &str = "[binding.dns]\nlisten = [\"udp://127.0.0.1:53\"]\ngroup = \"www-data\"\n";

    fn max(_: Buffer) -> Result<u64, String> {
        Ok(212_992)
    }

    fn described(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match &c.action {
                Action::Apply(_) => format!("apply {}", c.what),
                Action::Refuse(why) => format!("refuse {}: {why}", c.what),
            })
            .collect()
    }

    #[test]
    fn nothing_changed_is_an_empty_plan() {
        assert_eq!(plan(&config(HTTP), &config(HTTP), &max), []);
    }

    #[test]
    fn rules_mode_backlog_options_and_removals_are_applied() {
        let old = config(&format!("{DNS}{HTTP}"));
        let new = config(&format!(
            "{HTTP}allow_users = [\"daemon\"]\nmode = \"0666\"\nbacklog = 16\nnonblocking = true\nreceive_buffer = 4096\n"
        ));
        assert_eq!(
            plan(&old, &new, &max),
            [
                Change {
                    what: "binding `dns`: removed".into(),
                    action: Action::Apply(Step::Remove(0)),
                },
                Change {
                    what: "binding `http`: allow_users, allow_groups".into(),
                    action: Action::Apply(Step::Rules(1)),
                },
                Change {
                    what: "binding `http`: mode".into(),
                    action: Action::Apply(Step::Mode(1)),
                },
                Change {
                    what: "binding `http`: backlog".into(),
                    action: Action::Apply(Step::Backlog(1)),
                },
                Change {
                    what: "binding `http`: nonblocking, receive_buffer".into(),
                    action: Action::Apply(Step::Options(1)),
                },
            ]
        );
    }

    #[test]
    fn what_needs_a_privilege_is_refused_with_why() {
        let old = config(HTTP);
        let new = config(&format!(
            "{DNS}[binding.http]\nlisten = [\"127.0.0.1:81\"]\ngroup = \"nogroup\"\nmark = 1\nreceive_buffer = 1000000\n"
        ));
        let shown = described(&plan(&old, &new, &max));
        assert_eq!(
            shown,
            [
                "refuse binding `dns`: added: a new binding binds new sockets, which needs CAP_NET_BIND_SERVICE: restart to apply",
                "refuse binding `http`: listen: new addresses need new sockets: restart to apply",
                "refuse binding `http`: group: the socket file's group is set with chown, which needs CAP_CHOWN: restart to apply",
                "refuse binding `http`: mark: setting SO_MARK needs CAP_NET_ADMIN: restart to apply",
                "refuse binding `http`: receive_buffer: 1000000 bytes is beyond net.core.rmem_max (212992 bytes), which only CAP_NET_ADMIN passes, and the daemon gave its capabilities up at start: restart to apply",
            ]
        );
    }

    #[test]
    fn a_buffer_whose_maximum_cannot_be_known_is_refused() {
        let old = config(HTTP);
        let new = config(&format!("{HTTP}receive_buffer = 4096\n"));
        let unknown = |_: Buffer| Err("no socket: EMFILE".to_owned());
        assert_eq!(
            described(&plan(&old, &new, &unknown)),
            [
                "refuse binding `http`: receive_buffer: whether 4096 bytes needs CAP_NET_ADMIN cannot be known: no socket: EMFILE: restart to apply"
            ]
        );
    }

    #[test]
    fn global_settings_are_refused() {
        let old = config(HTTP);
        let text =
            format!("user = \"daemon\"\nsocket_dir = \"/run/other\"\nlog = \"stderr\"\n{HTTP}");
        let new = validate(
            parse(&text, std::path::Path::new("t.toml")).unwrap(),
            Origin::File("t.toml".into()),
        )
        .unwrap();
        let what: Vec<String> = plan(&old, &new, &max).into_iter().map(|c| c.what).collect();
        assert_eq!(what, ["user", "socket_dir", "log, facility"]);
    }
}
