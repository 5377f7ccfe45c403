//! The configuration parser and validator, fed arbitrary text: they must report problems,
//! never panic, and whatever they accept must keep the promises the daemon relies on.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use portbinder::config::address::ListenAddr;
use portbinder::config::ids::IdRange;
use portbinder::config::{self, MAX_ADDRESSES, Origin};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/fuzz/portbinder.toml");
    let Ok(raw) = config::parse(text, path) else {
        return;
    };
    let Ok(config) = config::validate(raw, Origin::File(path.to_owned())) else {
        return;
    };
    assert!(!config.user.uid.is_root());
    assert!(config.socket_dir.is_absolute());
    assert!(!config.bindings.is_empty());
    for (i, binding) in config.bindings.iter().enumerate() {
        assert!(config::is_valid_name(&binding.name), "{:?}", binding.name);
        assert!((1..=MAX_ADDRESSES).contains(&binding.listen.len()));
        assert!((1..=libc::SOMAXCONN as u32).contains(&binding.backlog));
        assert!(binding.mode <= 0o777);
        assert_eq!(
            binding.allow_groups.first(),
            Some(&IdRange::single(binding.group.gid))
        );
        // A range never holds id 0 unless it is exactly 0, named alone.
        for users in &binding.allow_users {
            assert!(users.first() == users.last() || users.first().as_raw() > 0);
        }
        for groups in &binding.allow_groups[1..] {
            assert!(groups.first() == groups.last() || groups.first().as_raw() > 0);
        }
        for (j, addr) in binding.listen.iter().enumerate() {
            // What the audit line and `check` print parses back to the same address.
            assert_eq!(addr.to_string().parse::<ListenAddr>().as_ref(), Ok(addr));
            assert!(
                binding.listen[j + 1..]
                    .iter()
                    .all(|b| !addr.conflicts_with(b))
            );
            for other in &config.bindings[i + 1..] {
                assert!(other.listen.iter().all(|b| !addr.conflicts_with(b)));
            }
        }
    }
});
