//! The record of the sockets portbinder bound, which tells recovery (setup/recover/) a
//! socket it may hand out from one it must not: another server's on the same address
//! (why.rs: why a record or a socket does not pass).
//!
//! A socket's cookie (SO_COOKIE) names it for the whole boot, the same through every
//! descriptor in every process, never reused. Each start as root, once every binding has its
//! sockets (bound here, adopted from LISTEN_FDS or recovered) and before the drop, writes
//! `<socket_dir>/.portbinder.bound` ([`write()`]): the boot it was written in, and per socket
//! its cookie, binding and address. A socket found on a configured address is recovered only
//! when that record names its cookie for that binding and address ([`Record::admits`]).
//!
//! The run user owns the socket directory: it can remove, rename or replace the record at
//! will, though not write into root's file. So the record is created root:root 0600 through
//! the directory's checked descriptor (a new file, O_EXCL and O_NOFOLLOW, renamed into place),
//! and trusted only when the file opened (O_NOFOLLOW) is a regular file with one link, owned
//! by root, with no group or other permission bits, written during this boot
//! ([`Record::read`]); anything else counts as no record (fail closed). It stays when the
//! daemon stops: the apps may still hold the sockets. There is no fsync: the record has to
//! outlive a crash of the daemon, not of the machine, and a reboot voids it anyway.

mod why;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::{Mode, SFlag, fchmod, fstat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, unlinkat};

use crate::config::address::ListenAddr;
use crate::serve::audit::Line;
use crate::serve::setup::sockdir::{SockDirError, SocketDir, io_errno, sys};
use crate::serve::sys as syscalls;

pub use why::{Unrecorded, Untrusted};

/// The record's name in the socket directory.
pub const RECORD_FILE: &str = ".portbinder.bound";

/// The record being written, renamed to [`RECORD_FILE`] once complete.
const NEW_FILE: &str = ".portbinder.bound.new";

/// The first line of the record.
const HEADER: &str = "# portbinder: the sockets bound at its last start as root, which it may recover \
     after a crash (README, \"Restarts without systemd\"); written by root, never edited";

/// This boot's id, which the record must carry to be trusted.
fn boot_id() -> Result<String, Errno> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|id| id.trim().to_owned())
        .map_err(|e| io_errno(&e))
}

/// Records `sockets` (binding name, address, socket) in the socket directory, replacing the
/// record of the previous start. Only for a start as root: the file must be root's.
///
/// A record that cannot be written (the run user, which owns the directory, can put a
/// directory of its own where the new one is made; /run can be full) does not stop the start:
/// the record of the previous start is removed, so that no record names sockets this start
/// may not serve any more, and the returned line (to log once syslog is open) says that this
/// start's sockets cannot be recovered after a crash.
pub fn write<'a>(
    dir: &SocketDir,
    sockets: impl IntoIterator<Item = (&'a str, &'a ListenAddr, BorrowedFd<'a>)>,
) -> Option<Line> {
    let error = write_new(dir, sockets).err()?;
    let removed = match unlinkat(dir.fd(), RECORD_FILE, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => "the record of the previous start is removed".to_owned(),
        Err(e) => format!("the record of the previous start cannot be removed either: {e}"),
    };
    Some(
        Line::new("error")
            .field("op", "record")
            .field("record", dir.path.join(RECORD_FILE).display())
            .field("error", &error)
            .field(
                "action",
                format!(
                    "serving; this start's sockets are not recorded, and {removed}, so after a \
                     crash they cannot be recovered (a restart fails with EADDRINUSE while \
                     programs hold them): remove what is in the way and restart"
                ),
            ),
    )
}

fn write_new<'a>(
    dir: &SocketDir,
    sockets: impl IntoIterator<Item = (&'a str, &'a ListenAddr, BorrowedFd<'a>)>,
) -> Result<(), SockDirError> {
    let path = dir.path.join(RECORD_FILE);
    let new_path = dir.path.join(NEW_FILE);
    let mut text = format!(
        "{HEADER}\nboot {}\n",
        boot_id().map_err(sys("read the boot id for", &path))?
    );
    for (binding, addr, fd) in sockets {
        let cookie = syscalls::socket_cookie(fd)
            .map_err(|e| sys("read the SO_COOKIE of a socket for", &path)(io_errno(&e)))?;
        let _ = writeln!(text, "socket {cookie} {binding} {addr}");
    }
    // A `.new` left by a daemon killed while writing, or planted by the run user.
    match unlinkat(dir.fd(), NEW_FILE, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(sys("remove the stale", &new_path)(e)),
    }
    let file = openat(
        dir.fd(),
        NEW_FILE,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::S_IRUSR | Mode::S_IWUSR,
    )
    .map_err(sys("create", &new_path))?;
    // root:root even in a set-group-id directory; 0600 whatever the umask.
    fchown(&file, Some(Uid::from_raw(0)), Some(Gid::from_raw(0)))
        .map_err(sys("chown", &new_path))?;
    fchmod(&file, Mode::S_IRUSR | Mode::S_IWUSR).map_err(sys("chmod", &new_path))?;
    std::fs::File::from(file)
        .write_all(text.as_bytes())
        .map_err(|e| sys("write", &new_path)(io_errno(&e)))?;
    renameat(dir.fd(), NEW_FILE, dir.fd(), RECORD_FILE).map_err(sys("rename into place", &path))
}

/// The record as start-up found it: the sockets of the last start as root by cookie, or why
/// it is not trusted.
#[derive(Debug)]
pub struct Record {
    path: PathBuf,
    sockets: Result<HashMap<u64, (String, String)>, Untrusted>,
}

impl Record {
    /// Reads the record in the socket directory, if only root can have written it.
    pub fn read(dir: &SocketDir) -> Record {
        let path = dir.path.join(RECORD_FILE);
        let sockets = match Uid::effective().is_root() {
            true => read_trusted(dir.fd(), &path),
            false => Err(Untrusted::NotRoot),
        };
        Record { path, sockets }
    }

    /// Whether the record names socket `cookie` as `binding`'s on `addr`.
    pub fn admits(&self, binding: &str, addr: &ListenAddr, cookie: u64) -> Result<(), Unrecorded> {
        let sockets = self.sockets.as_ref().map_err(|why| Unrecorded::Unknown {
            addr: *addr,
            why: why.clone(),
        })?;
        match sockets.get(&cookie) {
            Some((b, a)) if b == binding && *a == addr.to_string() => Ok(()),
            Some((b, a)) => Err(Unrecorded::ForAnother {
                addr: *addr,
                binding: b.clone(),
                recorded: a.clone(),
                path: self.path.clone(),
            }),
            None => Err(Unrecorded::NotInRecord {
                addr: *addr,
                path: self.path.clone(),
            }),
        }
    }
}

/// Opens the record without following a link or blocking on a FIFO, checks that only root
/// can have written it, and parses it.
fn read_trusted(
    dir: BorrowedFd<'_>,
    path: &std::path::Path,
) -> Result<HashMap<u64, (String, String)>, Untrusted> {
    let path = path.to_owned();
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let file = match openat(dir, RECORD_FILE, flags, Mode::empty()) {
        Ok(file) => file,
        Err(Errno::ENOENT) => return Err(Untrusted::Missing { path }),
        Err(Errno::ELOOP) => return Err(Untrusted::NotRegular { path }),
        Err(errno) => return Err(Untrusted::Unreadable { path, errno }),
    };
    let stat = fstat(&file).map_err(|errno| Untrusted::Unreadable {
        path: path.clone(),
        errno,
    })?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(Untrusted::NotRegular { path });
    }
    if stat.st_nlink != 1 {
        return Err(Untrusted::Links {
            path,
            links: stat.st_nlink,
        });
    }
    if stat.st_uid != 0 {
        return Err(Untrusted::Owner {
            path,
            uid: stat.st_uid,
        });
    }
    if stat.st_mode & 0o077 != 0 {
        return Err(Untrusted::Mode {
            path,
            mode: stat.st_mode & 0o7777,
        });
    }
    let mut text = String::new();
    std::fs::File::from(file)
        .read_to_string(&mut text)
        .map_err(|e| Untrusted::Unreadable {
            path: path.clone(),
            errno: io_errno(&e),
        })?;
    let boot = boot_id().map_err(|errno| Untrusted::Unreadable {
        path: path.clone(),
        errno,
    })?;
    parse(&text, &boot, path)
}

/// The sockets of a record's text, if it was written during boot `boot`.
fn parse(
    text: &str,
    boot: &str,
    path: PathBuf,
) -> Result<HashMap<u64, (String, String)>, Untrusted> {
    let mut lines = text.lines().enumerate();
    let malformed = |(n, line): (usize, &str)| Untrusted::Malformed {
        path: path.clone(),
        line: n + 1,
        text: line.to_owned(),
    };
    match lines.next() {
        Some((_, HEADER)) => {}
        Some(other) => return Err(malformed(other)),
        None => return Err(malformed((0, ""))),
    }
    match lines.next() {
        Some((_, line)) if line.strip_prefix("boot ") == Some(boot) => {}
        Some((_, line)) if line.starts_with("boot ") => return Err(Untrusted::OtherBoot { path }),
        Some(other) => return Err(malformed(other)),
        None => return Err(malformed((1, ""))),
    }
    let mut sockets = HashMap::new();
    for (n, line) in lines {
        let fields: Vec<&str> = line.split(' ').collect();
        let cookie = match fields[..] {
            ["socket", cookie, _, _] => cookie.parse::<u64>().ok(),
            _ => None,
        };
        let Some(cookie) = cookie else {
            return Err(malformed((n, line)));
        };
        sockets.insert(cookie, (fields[2].to_owned(), fields[3].to_owned()));
    }
    Ok(sockets)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOT: &str = "8d1e5a1c-0c2f-4b6e-9a57-5b1d2f3e4a5b";

    fn record(sockets: Result<HashMap<u64, (String, String)>, Untrusted>) -> Record {
        Record {
            path: PathBuf::from("/run/portbinder/.portbinder.bound"),
            sockets,
        }
    }

    fn text(lines: &[&str]) -> String {
        let mut text = format!("{HEADER}\nboot {BOOT}\n");
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    #[test]
    fn a_record_names_each_socket_for_its_binding_and_address() {
        let parsed = parse(
            &text(&[
                "socket 7 http tcp://127.0.0.1:80",
                "socket 9 dns udp://[::1]:53",
            ]),
            BOOT,
            PathBuf::from("r"),
        )
        .unwrap();
        let r = record(Ok(parsed));
        let http: ListenAddr = "tcp://127.0.0.1:80".parse().unwrap();
        let dns: ListenAddr = "udp://[::1]:53".parse().unwrap();
        assert_eq!(r.admits("http", &http, 7), Ok(()));
        assert_eq!(r.admits("dns", &dns, 9), Ok(()));
        let text = r.admits("http", &http, 8).unwrap_err().to_string();
        assert!(
            text.starts_with(
                "the socket on tcp://127.0.0.1:80 was not bound by portbinder (no record of it \
                 in /run/portbinder/.portbinder.bound): another server holds the address"
            ),
            "{text}"
        );
        let renamed = r.admits("web", &http, 7).unwrap_err();
        assert!(
            matches!(&renamed, Unrecorded::ForAnother { binding, .. } if binding == "http"),
            "{renamed}"
        );
    }

    #[test]
    fn a_record_of_another_boot_or_format_is_not_trusted() {
        let path = || PathBuf::from("r");
        let other_boot = text(&[]).replace(BOOT, "another");
        assert_eq!(
            parse(&other_boot, BOOT, path()),
            Err(Untrusted::OtherBoot { path: path() })
        );
        for bad in [
            "socket 7 http",
            "socket x http tcp://127.0.0.1:80",
            "socket 7 http tcp://127.0.0.1:80 extra",
            "",
        ] {
            assert!(
                matches!(
                    parse(&text(&[bad]), BOOT, path()),
                    Err(Untrusted::Malformed { line: 3, .. })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse("# something else\n", BOOT, path()),
            Err(Untrusted::Malformed { line: 1, .. })
        ));
        let unknown = record(Err(Untrusted::NotRoot));
        let addr: ListenAddr = "tcp://127.0.0.1:80".parse().unwrap();
        let text = unknown.admits("http", &addr, 7).unwrap_err().to_string();
        assert!(
            text.starts_with(
                "the socket on tcp://127.0.0.1:80 is not known to be one portbinder bound: this \
                 daemon was not started as root"
            ),
            "{text}"
        );
    }
}
