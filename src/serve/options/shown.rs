//! A binding's socket options as the daemon's `event=start` line shows them.

use crate::config::SocketOptions;

/// A binding's options as its `event=start` line shows them: `nonblocking` always, every
/// other one when it differs from the default. Bools are 0 or 1, sizes in bytes.
pub fn audit_fields(options: &SocketOptions) -> Vec<(&'static str, String)> {
    let flag = |b: bool| u8::from(b).to_string();
    let mut fields = vec![("nonblocking", flag(options.nonblocking))];
    let mut add = |key, value: Option<String>| fields.extend(value.map(|v| (key, v)));
    add("ipv6_only", (!options.ipv6_only).then(|| flag(false)));
    add("free_bind", options.free_bind.then(|| flag(true)));
    add("bind_to_device", options.bind_to_device.clone());
    add("reuse_address", options.reuse_address.map(flag));
    add("defer_accept", options.defer_accept.map(|v| v.to_string()));
    add("fast_open", options.fast_open.map(|v| v.to_string()));
    add("keepalive", options.keepalive.then(|| flag(true)));
    add(
        "keepalive_idle",
        options.keepalive_idle.map(|v| v.to_string()),
    );
    add(
        "keepalive_interval",
        options.keepalive_interval.map(|v| v.to_string()),
    );
    add(
        "keepalive_count",
        options.keepalive_count.map(|v| v.to_string()),
    );
    add(
        "receive_buffer",
        options.receive_buffer.map(|v| v.to_string()),
    );
    add("send_buffer", options.send_buffer.map(|v| v.to_string()));
    add("mark", options.mark.map(|v| v.to_string()));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_line_shows_nonblocking_and_what_is_set() {
        assert_eq!(
            audit_fields(&SocketOptions::default()),
            [("nonblocking", "0".to_owned())]
        );
        let options = SocketOptions {
            nonblocking: true,
            ipv6_only: false,
            mark: Some(7),
            receive_buffer: Some(1 << 20),
            ..SocketOptions::default()
        };
        let fields: Vec<String> = audit_fields(&options)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            fields,
            [
                "nonblocking=1",
                "ipv6_only=0",
                "receive_buffer=1048576",
                "mark=7"
            ]
        );
    }
}
