//! The shim's environment variables: what `portbinder exec --preload` (or the user) tells
//! it, read once at load, then hidden from the program's children unless they are to
//! inherit the shim.

use libc::c_int;

use crate::sys;

/// The granted descriptors, comma-separated: `3,4` from `portbinder exec`, or `FD:INODE`
/// entries written by the shim itself for children that inherit it (so that a child's shim
/// takes only the sockets its parent kept, not whatever the parent left at those numbers).
pub const FDS_VAR: &str = "PORTBINDER_FDS";
/// The binding of each granted descriptor, colon-separated as `LISTEN_FDNAMES`; only used to
/// name the binding in warnings.
pub const NAMES_VAR: &str = "PORTBINDER_FDNAMES";
/// `1`: serve a bind of any address with a granted wildcard socket of the same port.
pub const ANY_ADDRESS_VAR: &str = "PORTBINDER_PRELOAD_ANY_ADDRESS";
/// `1`: let the program's children inherit the shim and the sockets.
pub const INHERIT_VAR: &str = "PORTBINDER_PRELOAD_INHERIT";
/// Our file name, to remove from LD_PRELOAD.
const LIB_NAME: &str = "libportbinder_preload.so";

/// One entry of `PORTBINDER_FDS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The descriptor number.
    pub fd: c_int,
    /// The socket's inode, when the entry says which socket must be there.
    pub inode: Option<u64>,
}

/// What the environment says, read at load.
#[derive(Debug, Default)]
pub struct Settings {
    /// `PORTBINDER_FDS`.
    pub fds: Vec<Entry>,
    /// `PORTBINDER_FDNAMES`, one name per entry of `fds` (fewer if it is short).
    pub names: Vec<String>,
    /// `PORTBINDER_PRELOAD_ANY_ADDRESS=1`.
    pub any_address: bool,
    /// `PORTBINDER_PRELOAD_INHERIT=1`.
    pub inherit: bool,
}

fn is_one(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

fn parse_entry(text: &str) -> Option<Entry> {
    let (fd, inode) = match text.trim().split_once(':') {
        Some((fd, inode)) => (fd, Some(inode.parse().ok()?)),
        None => (text.trim(), None),
    };
    Some(Entry {
        fd: fd.parse().ok().filter(|&fd| fd >= 0)?,
        inode,
    })
}

impl Settings {
    /// Reads the variables (unset or malformed ones read as empty or off).
    pub fn read() -> Settings {
        let fds = std::env::var(FDS_VAR).unwrap_or_default();
        let names = std::env::var(NAMES_VAR).unwrap_or_default();
        Settings {
            fds: fds.split(',').filter_map(parse_entry).collect(),
            names: names.split(':').map(str::to_owned).collect(),
            any_address: is_one(ANY_ADDRESS_VAR),
            inherit: is_one(INHERIT_VAR),
        }
    }
}

/// Removes the shim from LD_PRELOAD and its variables from the environment, so that the
/// program's children run without it. Constructor only.
pub fn hide() {
    let kept: Vec<String> = std::env::var("LD_PRELOAD")
        .unwrap_or_default()
        .split([':', ' '])
        .filter(|p| !p.is_empty() && !p.ends_with(LIB_NAME))
        .map(str::to_owned)
        .collect();
    sys::set_env_at_load(
        "LD_PRELOAD",
        (!kept.is_empty()).then(|| kept.join(":")).as_deref(),
    );
    for name in [FDS_VAR, NAMES_VAR, ANY_ADDRESS_VAR] {
        sys::set_env_at_load(name, None);
    }
}

/// Tells children that inherit the shim where the sockets are now, and which they are.
/// Constructor only.
pub fn publish(kept: &[Entry], names: &[&str]) {
    let fds: Vec<String> = kept
        .iter()
        .map(|e| match e.inode {
            Some(inode) => format!("{}:{inode}", e.fd),
            None => e.fd.to_string(),
        })
        .collect();
    sys::set_env_at_load(FDS_VAR, Some(&fds.join(",")));
    sys::set_env_at_load(NAMES_VAR, Some(&names.join(":")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_numbers_with_an_optional_inode() {
        let parse = |s| parse_entry(s);
        assert_eq!(parse("3"), Some(Entry { fd: 3, inode: None }));
        assert_eq!(
            parse(" 1021:4567 "),
            Some(Entry {
                fd: 1021,
                inode: Some(4567)
            })
        );
        for bad in ["", "-1", "x", "3:", "3:x", "3:4:5"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
