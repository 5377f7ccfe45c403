//! Per-binding socket options: the keys of a `[binding.NAME]` table that say how its sockets
//! are made (`nonblocking`, `ipv6_only`, `free_bind`, …), once validated (for type, range and
//! whether they apply to the binding's addresses: src/config/validate/options.rs). The daemon
//! applies them before bind(2) and listen(2), while it still holds its privileges
//! (src/serve/options/).

use super::address::Proto;

/// The largest socket buffer the kernel takes: it doubles the value and keeps it an `int`.
pub const MAX_BUFFER: u64 = (i32::MAX / 2) as u64;
/// The longest `defer_accept`, in seconds.
pub const MAX_DEFER_ACCEPT: i64 = 3600;
/// The kernel's limits for TCP_KEEPIDLE and TCP_KEEPINTVL (seconds) and TCP_KEEPCNT.
pub const MAX_KEEPALIVE_TIME: i64 = 32767;
/// The kernel's limit for TCP_KEEPCNT.
pub const MAX_KEEPALIVE_COUNT: i64 = 127;
/// The longest interface name (IFNAMSIZ less its NUL).
pub const MAX_DEVICE_NAME: usize = 15;

/// A binding's socket options, validated. Unset options are `None` (or the default for the
/// flags): the daemon leaves those as the kernel makes a new socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOptions {
    /// O_NONBLOCK on the shared sockets (systemd's `NonBlocking=`).
    pub nonblocking: bool,
    /// IPV6_V6ONLY on the IPv6 sockets; false makes `[::]` dual-stack.
    pub ipv6_only: bool,
    /// IP_FREEBIND / IPV6_FREEBIND: bind addresses the host does not have (yet).
    pub free_bind: bool,
    /// SO_BINDTODEVICE: only packets of this interface.
    pub bind_to_device: Option<String>,
    /// SO_REUSEADDR; `None` means the default: on for TCP, off for UDP.
    pub reuse_address: Option<bool>,
    /// TCP_DEFER_ACCEPT, seconds.
    pub defer_accept: Option<u32>,
    /// TCP_FASTOPEN queue length.
    pub fast_open: Option<u32>,
    /// SO_KEEPALIVE on the TCP sockets (inherited by accepted connections).
    pub keepalive: bool,
    /// TCP_KEEPIDLE, seconds.
    pub keepalive_idle: Option<u32>,
    /// TCP_KEEPINTVL, seconds.
    pub keepalive_interval: Option<u32>,
    /// TCP_KEEPCNT.
    pub keepalive_count: Option<u32>,
    /// SO_RCVBUF (SO_RCVBUFFORCE beyond net.core.rmem_max), bytes before the kernel doubles it.
    pub receive_buffer: Option<u32>,
    /// SO_SNDBUF (SO_SNDBUFFORCE beyond net.core.wmem_max), bytes before the kernel doubles it.
    pub send_buffer: Option<u32>,
    /// SO_MARK (needs CAP_NET_ADMIN).
    pub mark: Option<u32>,
}

impl Default for SocketOptions {
    /// What portbinder has always done: blocking, IPv6-only, SO_REUSEADDR on TCP.
    fn default() -> Self {
        SocketOptions {
            nonblocking: false,
            ipv6_only: true,
            free_bind: false,
            bind_to_device: None,
            reuse_address: None,
            defer_accept: None,
            fast_open: None,
            keepalive: false,
            keepalive_idle: None,
            keepalive_interval: None,
            keepalive_count: None,
            receive_buffer: None,
            send_buffer: None,
            mark: None,
        }
    }
}

impl SocketOptions {
    /// Whether SO_REUSEADDR goes on a socket of `proto`.
    pub fn reuse_address_for(&self, proto: Proto) -> bool {
        self.reuse_address.unwrap_or(proto == Proto::Tcp)
    }

    /// Whether the socket for the IPv6 address `addr` is IPv6-only: as configured on `[::]`
    /// and the IPv4-mapped addresses; always on the others, which bind(2) makes IPv6-only
    /// whatever was asked.
    pub fn ipv6_only_for(&self, addr: &super::address::ListenAddr) -> bool {
        self.ipv6_only || addr.dual_stack_ipv4().is_none()
    }
}
