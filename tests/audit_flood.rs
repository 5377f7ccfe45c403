//! The audit log under a flood of distinct uids (issue 10, item 3). Thousands of real
//! processes, each with a uid of its own in the binding's group (as a member with a
//! subordinate uid range can make in a user namespace), fetch once each, and another member
//! fetches in the middle of the flood. Whatever the number of uids, the log stays within the
//! bound that README ("Audit log") and SECURITY.md document, every grant is either logged or
//! counted in an `event=suppressed` line that names its binding, and so is the other member's.

mod common;

use std::time::Instant;

use common::uidflood::{self, Fetched};
use common::*;

const BINDING: &str = r#"
[binding.http]
listen = ["127.0.0.1:80", "[::1]:80"]
group = "www-data"
"#;

/// More distinct uids than the 4,096 keys the rate limiter tracks.
const UIDS: u32 = 5000;
/// The first flooding uid (no passwd entry; gid www-data).
const FIRST_UID: u32 = 200_000;

/// The documented bound on the lines of one kind of event for one binding in any `seconds`
/// (README, "Audit log"): windows of 10 s; in each, at most 100 event lines, then one
/// `event=suppressed` line per uid that had its 20 (at most 100 / 20 of them) and one for the
/// events folded together. An interval of T seconds meets at most ceil(T/10) + 1 windows, and
/// the per-uid lines reported in it belong to windows that began at most 10 s before it.
fn documented_bound(seconds: f64) -> u64 {
    let windows = (seconds / 10.0).ceil() as u64;
    100 * (windows + 1) + (100 / 20) * (windows + 2) + (windows + 1)
}

#[test]
fn thousands_of_uids_cannot_flood_the_log_or_hide_another_members_grant() {
    let env = TestEnv::new();
    let mut daemon = env.serve(&env.config(BINDING));
    let socket = env.socket("http");
    let began = Instant::now();

    let mut flood = uidflood::fetch(&env, &socket, 33, FIRST_UID, UIDS, 16);
    flood.expect_line("half", EXIT_TIMEOUT);
    // Another member (uid 33), while the other half of the flood is still coming.
    let member = env.probe(WWW_DATA, &socket);
    member.assert_granted(2);
    let fetched: Fetched = flood.finish(EXIT_TIMEOUT).json();
    assert_eq!(
        (fetched.granted, fetched.denied, fetched.failed),
        (u64::from(UIDS), 0, 0),
        "{}",
        daemon.report()
    );

    // Stopping reports every pending count before the stop line.
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.report());
    let stop = daemon.wait_event("stop", &[]);
    let seconds = began.elapsed().as_secs_f64();
    let events = daemon.events();
    for event in &events {
        assert_eq!(
            event.format_errors(),
            Vec::<String>::new(),
            "{}",
            event.line
        );
    }

    // The bound holds for any number of uids.
    let grant_lines: Vec<&Event> = events.iter().filter(|e| e.kind() == "grant").collect();
    let suppressed: Vec<&Event> = events.iter().filter(|e| e.kind() == "suppressed").collect();
    let lines = (grant_lines.len() + suppressed.len()) as u64;
    let bound = documented_bound(seconds);
    assert!(
        lines <= bound,
        "{lines} grant and suppressed lines for {} grants to {} uids in {seconds:.1} s: the \
         documented bound is {bound}\nfirst suppressed lines: {:#?}",
        UIDS + 1,
        UIDS + 1,
        suppressed
            .iter()
            .take(5)
            .map(|e| &e.body)
            .collect::<Vec<_>>()
    );

    // Every suppressed line keeps its binding; every grant is logged or counted.
    for line in &suppressed {
        assert_eq!(line.get("kind"), Some("grant"), "{}", line.line);
        assert_eq!(line.get("binding"), Some("http"), "{}", line.line);
    }
    let counted: u64 = suppressed.iter().map(|e| e.number("count")).sum();
    assert_eq!(stop.number("grants"), u64::from(UIDS) + 1, "{}", stop.line);
    assert_eq!(
        grant_lines.len() as u64 + counted,
        stop.number("grants"),
        "every grant is either logged or counted\n{}",
        daemon.report()
    );

    // The other member's grant: logged with its uid, or folded into a line for its binding
    // that says how many uids were folded and the first and last seen. Every uid here fetches
    // once, so no uid reaches a per-uid limit: every suppressed line folds, and counts each of
    // its grants as a uid of its own; with every grant logged or counted (above), uid 33's
    // grant is in a line that names uid 33 or in one that counts its uid.
    let member_logged = grant_lines
        .iter()
        .any(|e| e.get("uid") == Some("33") && e.get("pid") == Some(&*member.pid.to_string()));
    for line in &suppressed {
        assert_eq!(
            line.get("uids").map(|_| line.number("uids")),
            Some(line.number("count")),
            "a suppressed line that does not count each folded grant's uid: {}",
            line.line
        );
        assert!(line.get("first_uid").is_some(), "{}", line.line);
        assert!(line.get("last_uid").is_some(), "{}", line.line);
    }
    assert!(
        member_logged || !suppressed.is_empty(),
        "uid 33's grant is neither logged nor counted\n{}",
        daemon.report()
    );
}
