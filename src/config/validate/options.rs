//! Validation of a binding's socket options: type, range, and whether each applies to the
//! binding's addresses (TCP, UDP, IPv6). Every problem is reported, not just the first.

use std::fmt;

use super::super::address::{ListenAddr, Proto};
use super::super::options::{
    MAX_BUFFER, MAX_DEFER_ACCEPT, MAX_DEVICE_NAME, MAX_KEEPALIVE_COUNT, MAX_KEEPALIVE_TIME,
    SocketOptions,
};
use super::super::raw::{RawBinding, Size};

/// Which sockets of a binding an option can act on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Applies {
    Tcp,
    Ipv6,
}

impl fmt::Display for Applies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Applies::Tcp => "TCP sockets, and the binding has no tcp:// address",
            Applies::Ipv6 => "IPv6 sockets, and the binding has no IPv6 address",
        })
    }
}

/// Validates the socket options of `raw`, whose addresses are `listen`. Each problem is
/// `(field, what is wrong and what to do)`; all are reported, not just the first.
pub fn validate(
    raw: &RawBinding,
    listen: &[ListenAddr],
) -> Result<SocketOptions, Vec<(&'static str, String)>> {
    let mut problems = Vec::new();
    let has_tcp = listen.iter().any(|a| a.proto == Proto::Tcp);
    let has_ipv6 = listen.iter().any(|a| a.addr.is_ipv6());
    let mut applies = |field: &'static str, set: bool, to: Applies| {
        let ok = match to {
            Applies::Tcp => has_tcp,
            Applies::Ipv6 => has_ipv6,
        };
        if set && !ok && !listen.is_empty() {
            problems.push((field, format!("applies to {to}: remove it")));
        }
    };
    applies("ipv6_only", raw.ipv6_only.is_some(), Applies::Ipv6);
    applies("defer_accept", raw.defer_accept.is_some(), Applies::Tcp);
    applies("fast_open", raw.fast_open.is_some(), Applies::Tcp);
    applies("keepalive", raw.keepalive.is_some(), Applies::Tcp);
    applies("keepalive_idle", raw.keepalive_idle.is_some(), Applies::Tcp);
    applies(
        "keepalive_interval",
        raw.keepalive_interval.is_some(),
        Applies::Tcp,
    );
    applies(
        "keepalive_count",
        raw.keepalive_count.is_some(),
        Applies::Tcp,
    );

    // bind(2) makes every IPv6 socket but `[::]` and the IPv4-mapped ones IPv6-only.
    let dual_capable = listen.iter().any(|a| a.dual_stack_ipv4().is_some());
    if raw.ipv6_only == Some(false) && has_ipv6 && !dual_capable {
        problems.push((
            "ipv6_only",
            "false changes only `[::]:PORT` (and IPv4-mapped) addresses, and the binding has \
             none: the kernel makes a socket on any other IPv6 address IPv6-only; list \
             [::]:PORT or remove it"
                .to_owned(),
        ));
    }

    let options = SocketOptions {
        nonblocking: raw.nonblocking.unwrap_or(false),
        ipv6_only: raw.ipv6_only.unwrap_or(true),
        free_bind: raw.free_bind.unwrap_or(false),
        bind_to_device: raw.bind_to_device.clone(),
        reuse_address: raw.reuse_address,
        defer_accept: ranged(
            &mut problems,
            "defer_accept",
            raw.defer_accept,
            1,
            MAX_DEFER_ACCEPT,
            "seconds",
        ),
        fast_open: ranged(
            &mut problems,
            "fast_open",
            raw.fast_open,
            1,
            i64::from(libc::SOMAXCONN),
            "connections",
        ),
        keepalive: raw.keepalive.unwrap_or(false),
        keepalive_idle: ranged(
            &mut problems,
            "keepalive_idle",
            raw.keepalive_idle,
            1,
            MAX_KEEPALIVE_TIME,
            "seconds",
        ),
        keepalive_interval: ranged(
            &mut problems,
            "keepalive_interval",
            raw.keepalive_interval,
            1,
            MAX_KEEPALIVE_TIME,
            "seconds",
        ),
        keepalive_count: ranged(
            &mut problems,
            "keepalive_count",
            raw.keepalive_count,
            1,
            MAX_KEEPALIVE_COUNT,
            "probes",
        ),
        receive_buffer: buffer(&mut problems, "receive_buffer", raw.receive_buffer.as_ref()),
        send_buffer: buffer(&mut problems, "send_buffer", raw.send_buffer.as_ref()),
        mark: ranged(
            &mut problems,
            "mark",
            raw.mark,
            0,
            i64::from(u32::MAX),
            "(a 32-bit firewall mark)",
        ),
    };
    if let Some(name) = &options.bind_to_device {
        if let Err(why) = check_device_name(name) {
            problems.push((
                "bind_to_device",
                format!(
                    "\"{}\" {why}: give an interface name as `ip link` shows it, such as \"eth0\"",
                    name.escape_debug()
                ),
            ));
        }
    }
    if options.ipv6_only {
        for addr in listen
            .iter()
            .filter(|a| a.dual_stack_ipv4().is_some() && !a.addr.ip().is_unspecified())
        {
            problems.push((
                "listen",
                format!(
                    "{addr} is an IPv4-mapped address, which an IPv6-only socket cannot bind: write it as IPv4 ({}) or set `ipv6_only = false`",
                    addr.dual_stack_ipv4().map_or_else(String::new, |a| a.addr.to_string())
                ),
            ));
        }
    }
    if problems.is_empty() {
        Ok(options)
    } else {
        Err(problems)
    }
}

/// An integer option in `min..=max`, `unit` naming what it counts.
fn ranged(
    problems: &mut Vec<(&'static str, String)>,
    field: &'static str,
    value: Option<i64>,
    min: i64,
    max: i64,
    unit: &str,
) -> Option<u32> {
    let value = value?;
    if (min..=max).contains(&value) {
        return u32::try_from(value).ok();
    }
    problems.push((
        field,
        format!("{value} is out of range: use {min} to {max} {unit}"),
    ));
    None
}

/// A buffer size: bytes, or a string with the suffix K, M or G (base 1024, as systemd's
/// `ReceiveBuffer=`), 1 to [`MAX_BUFFER`].
fn buffer(
    problems: &mut Vec<(&'static str, String)>,
    field: &'static str,
    value: Option<&Size>,
) -> Option<u32> {
    let value = value?;
    let bytes = match value {
        Size::Int(n) => u64::try_from(*n).ok(),
        Size::Text(text) => parse_size(text),
    };
    match bytes {
        Some(n @ 1..=MAX_BUFFER) => u32::try_from(n).ok(),
        _ => {
            let shown = match value {
                Size::Int(n) => n.to_string(),
                Size::Text(t) => format!("\"{}\"", t.escape_debug()),
            };
            problems.push((
                field,
                format!(
                    "{shown} is not a buffer size: give bytes from 1 to {MAX_BUFFER} (the kernel's limit), as a number or a string such as \"8M\" (suffixes K, M, G, base 1024)"
                ),
            ));
            None
        }
    }
}

/// `"512"`, `"64K"`, `"8M"`, `"1G"` in bytes (base 1024); `None` for anything else.
fn parse_size(text: &str) -> Option<u64> {
    let (digits, shift) = match text.trim().as_bytes().last()? {
        b'K' | b'k' => (&text.trim()[..text.trim().len() - 1], 10),
        b'M' | b'm' => (&text.trim()[..text.trim().len() - 1], 20),
        b'G' | b'g' => (&text.trim()[..text.trim().len() - 1], 30),
        _ => (text.trim(), 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Why the kernel would refuse `name` as an interface name (its dev_valid_name()).
fn check_device_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err("is not an interface name".to_owned());
    }
    if name.len() > MAX_DEVICE_NAME {
        return Err(format!(
            "is {} bytes long; interface names have at most {MAX_DEVICE_NAME}",
            name.len()
        ));
    }
    if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err("contains `/`, `:`, a space or a control character".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("8M"), Some(8 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        for bad in ["", "M", "8 MB", "-1", "0x10", "1.5M"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn device_names() {
        assert!(check_device_name("eth0").is_ok());
        assert!(check_device_name("wg-vpn.1").is_ok());
        for bad in ["", ".", "..", "a/b", "a:1", "a b", "sixteen-chars-xx"] {
            assert!(check_device_name(bad).is_err(), "{bad}");
        }
    }
}
