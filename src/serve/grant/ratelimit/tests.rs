use super::*;

fn limits() -> Limits {
    Limits {
        window: Duration::from_secs(10),
        per_uid: 3,
        per_binding: 12,
        max_keys: 16,
        max_folded_uids: 64,
    }
}

fn key(uid: u32) -> Key {
    Key {
        kind: Kind::Deny,
        binding: 0,
        uid: Some(uid),
    }
}

fn logged(rl: &mut RateLimiter, key: Key, times: usize, now: Instant) -> usize {
    (0..times).filter(|_| rl.admit(key, now)).count()
}

#[test]
fn one_uid_is_collapsed_and_counted_when_its_window_ends() {
    let t0 = Instant::now();
    let mut rl = RateLimiter::new(limits());
    assert_eq!(logged(&mut rl, key(7), 100, t0), 3);
    assert!(rl.admit(key(8), t0), "another uid has its own budget");
    assert_eq!(rl.next_deadline(), Some(t0 + Duration::from_secs(10)));
    rl.expire(t0 + Duration::from_secs(5));
    assert_eq!(rl.take_reports(), vec![]);
    rl.expire(t0 + Duration::from_secs(10));
    assert_eq!(
        rl.take_reports(),
        vec![Report::Uid {
            key: key(7),
            count: 97
        }]
    );
    assert_eq!(rl.next_deadline(), None);
    assert!(rl.admit(key(7), t0 + Duration::from_secs(11)));
}

#[test]
fn many_uids_are_folded_with_their_binding_and_counted() {
    let t0 = Instant::now();
    let mut rl = RateLimiter::new(limits());
    let logged = (1000..1500).filter(|&uid| rl.admit(key(uid), t0)).count();
    assert_eq!(
        logged, 12,
        "the binding's limit holds for any number of uids"
    );
    let reports = rl.drain();
    assert_eq!(
        reports,
        vec![Report::Folded {
            kind: Kind::Deny,
            binding: 0,
            count: 488,
            uids: 64,
            untracked: 488 - 64,
            first_uid: Some(1012),
            last_uid: Some(1499),
        }]
    );
    let line = reports[0].line("http");
    assert_eq!(
        line.as_str(),
        "event=suppressed kind=deny binding=http count=488 uids=64 untracked=424 first_uid=1012 last_uid=1499"
    );
    assert_eq!(
        rl.folded_uids, 0,
        "the folded uids are forgotten with their window"
    );
}

#[test]
fn kinds_and_bindings_have_separate_limits() {
    let t0 = Instant::now();
    let mut rl = RateLimiter::new(limits());
    for uid in 0..20 {
        rl.admit(key(uid), t0);
    }
    let grant = Key {
        kind: Kind::Grant,
        ..key(1)
    };
    let other_binding = Key {
        binding: 1,
        ..key(1)
    };
    assert!(rl.admit(grant, t0));
    assert!(rl.admit(other_binding, t0));
}

#[test]
fn lines_per_window_stay_bounded_for_any_number_of_uids() {
    // Per (kind, binding) and window: per_binding event lines, per_binding / per_uid
    // per-uid lines, one folded line.
    let limits = limits();
    let mut rl = RateLimiter::new(limits);
    let t0 = Instant::now();
    let mut lines = 0;
    for second in 0..100u32 {
        let now = t0 + Duration::from_secs(u64::from(second));
        for uid in 0..2000 {
            lines += usize::from(rl.admit(key(uid % (second + 1)), now));
        }
        lines += rl.take_reports().len();
    }
    lines += rl.drain().len();
    let windows = 100 / 10;
    let bound = windows * (limits.per_binding + limits.per_binding / limits.per_uid + 1);
    assert!(lines <= bound as usize, "{lines} lines, bound {bound}");
}

#[test]
fn a_full_table_forgets_idle_keys_and_folds_only_what_finds_no_room() {
    let t0 = Instant::now();
    let mut rl = RateLimiter::new(Limits {
        per_binding: 1000,
        ..limits()
    });
    // 16 keys with something suppressed fill the table for good.
    for uid in 0..16 {
        assert_eq!(logged(&mut rl, key(uid), 4, t0), 3);
    }
    assert!(!rl.admit(key(100), t0), "no room: folded");
    let reports = rl.drain();
    assert_eq!(reports.len(), 17, "{reports:?}");
    assert!(reports.contains(&Report::Folded {
        kind: Kind::Deny,
        binding: 0,
        count: 1,
        uids: 1,
        untracked: 0,
        first_uid: Some(100),
        last_uid: Some(100),
    }));

    // Keys with nothing suppressed make way for new ones.
    let mut rl = RateLimiter::new(Limits {
        per_binding: 1000,
        ..limits()
    });
    for uid in 0..200 {
        assert!(rl.admit(key(uid), t0), "uid {uid}");
    }
    assert!(rl.keys.len() <= 16);
    assert_eq!(rl.drain(), vec![]);
}

#[test]
fn events_without_a_peer_are_counted_without_a_uid() {
    let t0 = Instant::now();
    let mut rl = RateLimiter::new(limits());
    let error = Key {
        kind: Kind::Error,
        binding: 2,
        uid: None,
    };
    assert_eq!(logged(&mut rl, error, 5, t0), 3);
    let reports = rl.drain();
    assert_eq!(
        reports[0].line("dns").as_str(),
        "event=suppressed kind=error binding=dns count=2"
    );
}
