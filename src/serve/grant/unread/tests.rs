use super::*;
use crate::serve::grant::answer;
use crate::serve::grant::events::Token;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A connection on which the daemon's side has sent a grant of one socket: (ours, theirs).
fn granted() -> (OwnedFd, UnixStream) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let (socket, _keep) = UnixStream::pair().unwrap();
    answer::send_grant(ours.as_fd(), &[socket.as_raw_fd()]).unwrap();
    (OwnedFd::from(ours), theirs)
}

/// A moment at which every connection held so far is due for its check.
fn later() -> Instant {
    Instant::now() + FRESH_CHECK
}

fn read_grant(theirs: &mut UnixStream) {
    let mut byte = [0u8; 1];
    theirs.read_exact(&mut byte).unwrap();
}

#[test]
fn caps_share_the_budget_between_bindings_and_uids() {
    // 1024 descriptors, 12 in use: 884 for grants, 442 per binding.
    let (binding, uid) = caps(&[2, 1], 1024, 12);
    assert_eq!(binding, [221, 442]);
    assert_eq!(uid, [64, 110], "a quarter, but at least 64");
    // Small shares: a uid may use its binding's whole share.
    assert_eq!(
        caps(&[1; 1000], 20_000, 2010),
        (vec![17; 1000], vec![17; 1000])
    );
    // A budget too small for a share still lets every binding grant once.
    assert_eq!(caps(&[255], 100, 50), (vec![1], vec![1]));
}

#[test]
fn a_grant_read_and_closed_is_released_at_its_check() {
    let events = Events::new().unwrap();
    let mut unread = Unread::new(&[1], 1024, 12);
    let (ours, mut theirs) = granted();
    let now = Instant::now();
    unread.hold(ours, 0, 33, now, &events);
    unread.check_due(now, &events);
    assert_eq!(
        unread.deadline(now),
        Some(now + FRESH_CHECK),
        "not checked yet"
    );
    read_grant(&mut theirs);
    drop(theirs);
    unread.check_due(later(), &events);
    assert_eq!(unread.per_binding, [0]);
    assert!(unread.per_uid.is_empty());
    // Closed a few at a time; the loop wakes until all are.
    assert!(unread.deadline(now).is_some());
    unread.close_some(false);
    assert_eq!(unread.deadline(now), None);
}

#[test]
fn a_grant_read_but_kept_open_is_released_too() {
    let events = Events::new().unwrap();
    let mut unread = Unread::new(&[1], 1024, 12);
    let (ours, mut theirs) = granted();
    unread.hold(ours, 0, 33, Instant::now(), &events);
    read_grant(&mut theirs);
    unread.check_due(later(), &events);
    assert_eq!(unread.per_binding, [0]);
    unread.close_some(false);
    // The daemon's end is closed: the client sees the end of the answer.
    assert_eq!(theirs.read(&mut [0u8; 8]).unwrap(), 0);
}

#[test]
fn an_unread_grant_is_watched_until_it_is_read() {
    let mut events = Events::new().unwrap();
    let mut unread = Unread::new(&[1], 1024, 12);
    let (ours, mut theirs) = granted();
    unread.hold(ours, 0, 33, Instant::now(), &events);
    unread.check_due(later(), &events);
    assert_eq!(unread.per_binding, [1], "still unread");
    assert!(unread.fresh.is_empty(), "watched through epoll now");
    assert_eq!(unread.deadline(Instant::now()), None);
    // Registered: reported once at once (writable), and again once the grant is read.
    let mut slots = Vec::new();
    for _ in 0..2 {
        for i in 0..events.wait(Some(Duration::ZERO)).unwrap() {
            if let Token::Held(slot) = events.token(i) {
                unread.on_event(slot);
                slots.push(slot);
            }
        }
        if slots.len() == 1 {
            assert_eq!(unread.per_binding, [1]);
            read_grant(&mut theirs);
        }
    }
    assert_eq!(slots.len(), 2, "{slots:?}");
    assert_eq!(unread.per_binding, [0]);
}

#[test]
fn beyond_its_cap_a_uid_is_denied_with_a_reason_until_it_reads() {
    let mut events = Events::new().unwrap();
    // Room for 400 grants of one socket: 100 per uid.
    let mut unread = Unread::new(&[1], 12 + RESERVE + 400, 12);
    let mut clients = Vec::new();
    for _ in 0..100 {
        assert_eq!(unread.admit(0, 1000, "http", &mut events), Ok(()));
        let (ours, theirs) = granted();
        unread.hold(ours, 0, 1000, Instant::now(), &events);
        clients.push(theirs);
    }
    let reason = unread.admit(0, 1000, "http", &mut events).unwrap_err();
    assert_eq!(
        reason,
        "uid 1000 holds 100 unread grants of binding `http`, the most one uid may: read or close them, then retry"
    );
    assert_eq!(
        unread.admit(0, 1001, "http", &mut events),
        Ok(()),
        "another uid"
    );
    // The check at the cap found them unread: they are watched now. Reading one makes room
    // at once: at a cap, the pending events are taken first.
    read_grant(&mut clients[0]);
    assert_eq!(unread.admit(0, 1000, "http", &mut events), Ok(()));
    assert_eq!(unread.per_binding, [99]);
}

#[test]
fn beyond_its_share_a_binding_is_denied_and_others_are_not() {
    let mut events = Events::new().unwrap();
    let mut unread = Unread::new(&[1, 1], 12 + RESERVE + 8, 12);
    let mut clients = Vec::new();
    for uid in 0..4 {
        assert_eq!(unread.admit(0, uid, "http", &mut events), Ok(()));
        let (ours, theirs) = granted();
        unread.hold(ours, 0, uid, Instant::now(), &events);
        clients.push(theirs);
    }
    let reason = unread.admit(0, 99, "http", &mut events).unwrap_err();
    assert!(
        reason.starts_with("binding `http` has 4 unread grants"),
        "{reason}"
    );
    assert_eq!(unread.admit(1, 99, "dns", &mut events), Ok(()));
}
