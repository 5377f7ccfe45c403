//! systemd's file descriptor store, kept in line with the configuration at start-up (before
//! the drop) and after a reload that removed a binding: the stored sockets come back through
//! LISTEN_FDS after `systemctl restart`, a crash or a package upgrade, and
//! src/serve/setup/bind.rs adopts them by name and address, so the programs holding them keep
//! serving and new grants hand out the same sockets.

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, RawFd};

use crate::config::Binding;
use crate::serve::audit::Line;
use crate::serve::notify::Notifier;
use crate::serve::setup::bind::BoundSockets;
use crate::serve::setup::listenfds::Inherited;

/// The most descriptors one SCM_RIGHTS message may carry (the kernel's SCM_MAX_FD).
const MAX_FDS_PER_MESSAGE: usize = 253;

/// Brings the store in line with `bindings`: the stored sockets of inherited names that no
/// binding claimed (`unused`) are dropped (`FDSTOREREMOVE=1`), then every binding that has
/// a socket the store does not hold yet (one bound here, or one of a name just dropped) has
/// all its sockets stored under its name (`FDSTORE=1`, `FDNAME=`). Fully adopted bindings
/// are not sent again: sockets that came back from the store are in it already (systemd
/// ignores the same socket twice, but counts it against FileDescriptorStoreMax= first), and
/// sockets from `.socket` units belong to those units. Logs one `event=fdstore` line when it
/// sent anything; does nothing without a service manager.
pub fn sync(
    notifier: &Notifier,
    bindings: &[Binding],
    bound: &[BoundSockets],
    unused: &[(Inherited, String)],
) {
    if !notifier.is_enabled() {
        return;
    }
    let removed = send_removals(notifier, unused.iter().map(|(i, _)| i.name.as_str()));
    let mut stored = Vec::new();
    let mut fds = 0;
    for (binding, sockets) in bindings.iter().zip(bound) {
        if sockets.adopted == sockets.fds.len() && !removed.contains(binding.name.as_str()) {
            continue;
        }
        let raw: Vec<RawFd> = sockets.fds.iter().map(AsRawFd::as_raw_fd).collect();
        for chunk in raw.chunks(MAX_FDS_PER_MESSAGE) {
            notifier.send(&format!("FDSTORE=1\nFDNAME={}", binding.name), chunk);
        }
        stored.push(binding.name.as_str());
        fds += raw.len();
    }
    if stored.is_empty() && removed.is_empty() {
        return;
    }
    let mut line = Line::new("fdstore").field("fds", fds);
    if !stored.is_empty() {
        line = line.field("stored", stored.join(","));
    }
    if !removed.is_empty() {
        let names: Vec<&str> = removed.into_iter().collect();
        line = line.field("removed", names.join(","));
    }
    log::info!("{line}");
}

/// Drops the stored sockets of `names`, bindings a reload removed (`FDSTOREREMOVE=1`), and
/// logs one `event=fdstore fds=0 removed=…` line when it sent anything; does nothing without
/// a service manager. A name the store does not hold (the sockets of a `.socket` unit) is
/// ignored by systemd.
pub fn remove(notifier: &Notifier, names: &[&str]) {
    if !notifier.is_enabled() {
        return;
    }
    let removed = send_removals(notifier, names.iter().copied());
    if removed.is_empty() {
        return;
    }
    let names: Vec<&str> = removed.into_iter().collect();
    log::info!(
        "{}",
        Line::new("fdstore")
            .field("fds", 0)
            .field("removed", names.join(","))
    );
}

/// One `FDSTOREREMOVE=1` per distinct name of `names` that [`fdname_is_valid`] accepts; returns
/// those names.
fn send_removals<'a>(
    notifier: &Notifier,
    names: impl Iterator<Item = &'a str>,
) -> BTreeSet<&'a str> {
    let valid: BTreeSet<&str> = names.filter(|name| fdname_is_valid(name)).collect();
    for name in &valid {
        notifier.send(&format!("FDSTOREREMOVE=1\nFDNAME={name}"), &[]);
    }
    valid
}

/// Whether systemd accepts `name` as an FDNAME: 1 to 255 printable ASCII characters other
/// than `:`. (Anything else, a newline above all, would change the message's meaning.)
fn fdname_is_valid(name: &str) -> bool {
    (1..=255).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::IoSliceMut;
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixDatagram;

    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use nix::unistd::Gid;

    use crate::config::ids::GroupId;

    fn binding(name: &str) -> Binding {
        Binding {
            name: name.to_owned(),
            listen: Vec::new(),
            backlog: 16,
            group: GroupId {
                name: "g".to_owned(),
                gid: Gid::from_raw(1),
            },
            mode: 0o660,
            allow_users: Vec::new(),
            allow_groups: Vec::new(),
            options: Default::default(),
        }
    }

    /// `n` descriptors (copies of one socket: the store only sees numbers here).
    fn sockets(n: usize, adopted: usize) -> BoundSockets {
        let (one, _) = UnixDatagram::pair().unwrap();
        let fds = (0..n)
            .map(|_| OwnedFd::from(one.try_clone().unwrap()))
            .collect();
        BoundSockets {
            fds,
            adopted,
            recovered: 0,
        }
    }

    fn inherited(name: &str) -> (Inherited, String) {
        let (fd, _) = UnixDatagram::pair().unwrap();
        let inherited = Inherited {
            number: 3,
            name: name.to_owned(),
            fd: fd.into(),
        };
        (inherited, "not a TCP or UDP socket".to_owned())
    }

    /// Every message systemd would have received: (text, number of descriptors).
    fn received(systemd: &UnixDatagram) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let mut space = nix::cmsg_space!([RawFd; MAX_FDS_PER_MESSAGE]);
            let mut iov = [IoSliceMut::new(&mut buf)];
            let Ok(msg) = recvmsg::<()>(
                systemd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
            ) else {
                return out;
            };
            let mut fds = 0;
            for cmsg in msg.cmsgs().unwrap() {
                if let ControlMessageOwned::ScmRights(received) = cmsg {
                    fds += received.len();
                    for fd in received {
                        nix::unistd::close(fd).unwrap();
                    }
                }
            }
            let len = msg.bytes;
            out.push((String::from_utf8_lossy(&buf[..len]).into_owned(), fds));
        }
    }

    fn pair() -> (Notifier, UnixDatagram) {
        let (ours, theirs) = UnixDatagram::pair().unwrap();
        (Notifier::from_socket(ours.into()), theirs)
    }

    #[test]
    fn fresh_sockets_are_stored_and_adopted_ones_are_not_resent() {
        let (notifier, systemd) = pair();
        let bindings = [binding("dns"), binding("http")];
        let bound = [sockets(1, 0), sockets(2, 2)];
        sync(&notifier, &bindings, &bound, &[]);
        assert_eq!(
            received(&systemd),
            [("FDSTORE=1\nFDNAME=dns".to_owned(), 1)]
        );
    }

    #[test]
    fn a_dropped_name_is_removed_first_and_its_binding_stored_again() {
        let (notifier, systemd) = pair();
        // `http` changed an address: one socket adopted, one bound, one inherited left over.
        let bindings = [binding("http"), binding("web")];
        let bound = [sockets(2, 1), sockets(1, 1)];
        let unused = [inherited("http"), inherited("old"), inherited("old")];
        sync(&notifier, &bindings, &bound, &unused);
        assert_eq!(
            received(&systemd),
            [
                ("FDSTOREREMOVE=1\nFDNAME=http".to_owned(), 0),
                ("FDSTOREREMOVE=1\nFDNAME=old".to_owned(), 0),
                ("FDSTORE=1\nFDNAME=http".to_owned(), 2),
            ]
        );
    }

    #[test]
    fn more_sockets_than_one_message_carries_are_split() {
        let (notifier, systemd) = pair();
        sync(&notifier, &[binding("many")], &[sockets(255, 0)], &[]);
        assert_eq!(
            received(&systemd),
            [
                ("FDSTORE=1\nFDNAME=many".to_owned(), MAX_FDS_PER_MESSAGE),
                (
                    "FDSTORE=1\nFDNAME=many".to_owned(),
                    255 - MAX_FDS_PER_MESSAGE
                ),
            ]
        );
    }

    #[test]
    fn names_that_could_change_the_message_are_never_sent() {
        assert!(fdname_is_valid("http"));
        assert!(fdname_is_valid(&"a".repeat(255)));
        for bad in ["", "a:b", "a\nREADY=1", "a b", "é", &"a".repeat(256)] {
            assert!(!fdname_is_valid(bad), "{bad:?}");
        }
        let (notifier, systemd) = pair();
        sync(&notifier, &[], &[], &[inherited("x\nREADY=1")]);
        assert!(received(&systemd).is_empty());
    }

    #[test]
    fn a_reload_removes_the_names_of_removed_bindings() {
        let (notifier, systemd) = pair();
        remove(&notifier, &["dns", "x\nREADY=1", "alt"]);
        assert_eq!(
            received(&systemd),
            [
                ("FDSTOREREMOVE=1\nFDNAME=alt".to_owned(), 0),
                ("FDSTOREREMOVE=1\nFDNAME=dns".to_owned(), 0),
            ]
        );
    }
}
