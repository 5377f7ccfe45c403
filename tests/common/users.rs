//! The users the clients run as: Debian's standard accounts, each a fixed set of ids, so that
//! the daemon's access decisions are tested against real credentials.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// A set of credentials to run a client with (Debian's standard accounts).
#[derive(Clone, Copy, Debug)]
pub struct User {
    /// Name, for messages and for the `user=` field of audit lines.
    pub name: &'static str,
    /// Real and effective uid.
    pub uid: u32,
    /// Real and effective gid.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: &'static [u32],
}

/// www-data (33:33), the group of the bindings in most tests.
pub const WWW_DATA: User = User {
    name: "www-data",
    uid: 33,
    gid: 33,
    groups: &[33],
};
/// nobody (65534, group nogroup 65534), also the daemon's run user.
pub const NOBODY: User = User {
    name: "nobody",
    uid: 65534,
    gid: 65534,
    groups: &[65534],
};
/// daemon (1:1), in no group of interest.
pub const DAEMON: User = User {
    name: "daemon",
    uid: 1,
    gid: 1,
    groups: &[1],
};
/// daemon (1:1) with www-data (33) as a supplementary group.
pub const DAEMON_IN_WWW_DATA: User = User {
    name: "daemon",
    uid: 1,
    gid: 1,
    groups: &[1, 33],
};
/// root (0:0); gets no exception from the daemon.
pub const ROOT: User = User {
    name: "root",
    uid: 0,
    gid: 0,
    groups: &[0],
};

impl User {
    /// Makes `cmd` run with these credentials (groups, gid, then uid, before exec).
    ///
    /// `CommandExt::groups` is unstable and `CommandExt::uid` clears the supplementary groups
    /// after any `pre_exec` hook could set them, so all three are set in one hook.
    pub fn apply(self, cmd: &mut Command) {
        let groups: Vec<libc::gid_t> = self.groups.to_vec();
        let (uid, gid) = (self.uid, self.gid);
        // SAFETY: the hook runs in the forked child before exec and only makes the
        // async-signal-safe system calls setgroups, setgid and setuid, reading memory that was
        // allocated before the fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}
