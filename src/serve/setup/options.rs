//! A binding's socket options (src/config/options.rs) put on its sockets: on a new one
//! between socket(2) and bind(2), while the daemon still holds its start-up privileges, and
//! on an inherited one (fd store, socket units) as far as the kernel allows on a socket that
//! is bound already. What cannot be made to match is an error that says what to change.
//!
//! Every option the binding sets is applied. An inherited socket is also put back to the
//! default of each option that has one (blocking, IPv6-only, no free bind, SO_REUSEADDR on
//! TCP only, no defer, no fast open, no keepalive, no mark, no device), so it is served as
//! the configuration says and not as a previous configuration or a socket unit left it; the
//! keepalive timings and buffer sizes, whose defaults are the kernel's sysctls, are left as
//! they are unless set.

use std::ffi::OsString;
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::socket::{SetSockOpt, getsockopt, setsockopt, sockopt};

use crate::config::SocketOptions;
use crate::config::address::{ListenAddr, Proto};
use crate::serve::sys;

/// Where a socket was made, which decides what can still change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// Made here and not bound yet: everything can be set.
    Here,
    /// Inherited and bound (and, for TCP, listening).
    Inherited,
}

/// An option that could not be given to a socket.
#[derive(Debug)]
pub struct OptionError {
    /// The configuration key.
    pub field: &'static str,
    /// The value it asks for (`None`: not set, so the default).
    pub value: Option<String>,
    /// What went wrong (the missing privilege, the socket's own value…).
    pub problem: String,
    /// What the operator can do.
    pub fix: String,
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "`{} = {value}`", self.field)?,
            None => write!(f, "`{}` (not set)", self.field)?,
        }
        write!(f, ": {}\n  fix: {}", self.problem, self.fix)
    }
}

impl std::error::Error for OptionError {}

/// How to get CAP_NET_ADMIN, for the messages.
const NET_ADMIN_FIX: &str = "start portbinder as root (it gives the capability up before it \
    serves), or under systemd add CAP_NET_ADMIN to both AmbientCapabilities= and \
    CapabilityBoundingSet= (`systemctl edit portbinder`)";

/// Gives `fd`, a socket for `addr`, the options of its binding.
pub fn apply(
    fd: &OwnedFd,
    addr: &ListenAddr,
    options: &SocketOptions,
    made: Made,
) -> Result<(), OptionError> {
    let tcp = addr.proto == Proto::Tcp;
    // An inherited socket is put back to the defaults too; a new one has them already.
    let reset = made == Made::Inherited;
    if addr.addr.is_ipv6() {
        // bind(2) makes a socket on any IPv6 address but `[::]` and the IPv4-mapped ones
        // IPv6-only whatever was asked: that is what an inherited one has then.
        let only = options.ipv6_only || addr.dual_stack_ipv4().is_none();
        ipv6_only(fd, only, made)?;
    }
    let reuse = options.reuse_address_for(addr.proto);
    if reset || reuse {
        set(fd, "reuse_address", sockopt::ReuseAddr, &reuse, flag(reuse))?;
    }
    if reset || options.free_bind {
        let on = options.free_bind;
        set(fd, "free_bind", sockopt::IpFreebind, &on, flag(on))?;
    }
    device(fd, options.bind_to_device.as_deref(), made)?;
    mark(fd, options.mark, made)?;
    if let Some(bytes) = options.receive_buffer {
        buffer(fd, Buffer::Receive, bytes, made)?;
    }
    if let Some(bytes) = options.send_buffer {
        buffer(fd, Buffer::Send, bytes, made)?;
    }
    if tcp {
        tcp_options(fd, options, reset)?;
    }
    nonblocking(fd, options.nonblocking)
}

fn flag(on: bool) -> String {
    on.to_string()
}

/// setsockopt through nix, with a generic error.
fn set<O: SetSockOpt>(
    fd: &OwnedFd,
    field: &'static str,
    option: O,
    value: &O::Val,
    shown: String,
) -> Result<(), OptionError> {
    setsockopt(fd, option, value).map_err(|errno| failed(field, shown, errno))
}

/// A failure the kernel explains by its errno alone.
fn failed(field: &'static str, value: String, errno: Errno) -> OptionError {
    OptionError {
        field,
        value: Some(value),
        problem: format!("the kernel refused it: {errno}"),
        fix: "remove the option, or check that this kernel supports it".to_owned(),
    }
}

fn tcp_options(fd: &OwnedFd, options: &SocketOptions, reset: bool) -> Result<(), OptionError> {
    let int = |field: &'static str, name, value: Option<u32>| {
        if value.is_none() && !reset {
            return Ok(());
        }
        let value = value.unwrap_or(0);
        sys::set_int_sockopt(fd.as_fd(), libc::IPPROTO_TCP, name, value as libc::c_int).map_err(
            |e| {
                failed(
                    field,
                    value.to_string(),
                    Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                )
            },
        )
    };
    int("defer_accept", libc::TCP_DEFER_ACCEPT, options.defer_accept)?;
    int("fast_open", libc::TCP_FASTOPEN, options.fast_open)?;
    if reset || options.keepalive {
        let on = options.keepalive;
        set(fd, "keepalive", sockopt::KeepAlive, &on, flag(on))?;
    }
    if let Some(secs) = options.keepalive_idle {
        set(
            fd,
            "keepalive_idle",
            sockopt::TcpKeepIdle,
            &secs,
            secs.to_string(),
        )?;
    }
    if let Some(secs) = options.keepalive_interval {
        let shown = secs.to_string();
        set(
            fd,
            "keepalive_interval",
            sockopt::TcpKeepInterval,
            &secs,
            shown,
        )?;
    }
    if let Some(count) = options.keepalive_count {
        let shown = count.to_string();
        set(fd, "keepalive_count", sockopt::TcpKeepCount, &count, shown)?;
    }
    Ok(())
}

/// IPV6_V6ONLY can only be chosen before bind(2): an inherited socket must have it already.
fn ipv6_only(fd: &OwnedFd, want: bool, made: Made) -> Result<(), OptionError> {
    let has =
        getsockopt(fd, sockopt::Ipv6V6Only).map_err(|e| failed("ipv6_only", flag(want), e))?;
    if has == want {
        return Ok(());
    }
    if made == Made::Here {
        return set(fd, "ipv6_only", sockopt::Ipv6V6Only, &want, flag(want));
    }
    Err(OptionError {
        field: "ipv6_only",
        value: Some(flag(want)),
        problem: format!(
            "the inherited socket has IPV6_V6ONLY {}, which no socket can change once it is bound",
            u8::from(has)
        ),
        fix: format!(
            "set `ipv6_only = {has}` for this binding, or have the socket unit bind it with \
             BindIPv6Only={}; a socket kept in systemd's fd store keeps it until \
             `systemctl stop portbinder` empties the store",
            if want { "ipv6-only" } else { "both" }
        ),
    })
}

/// SO_BINDTODEVICE; changing the device of a socket bound to one needs CAP_NET_RAW.
fn device(fd: &OwnedFd, want: Option<&str>, made: Made) -> Result<(), OptionError> {
    let field = "bind_to_device";
    let value = want.map(|name| format!("\"{name}\""));
    let fail = |errno| failed(field, value.clone().unwrap_or_default(), errno);
    let has = getsockopt(fd, sockopt::BindToDevice).map_err(fail)?;
    let has = has.to_string_lossy().into_owned();
    let target = want.unwrap_or("");
    if has == target {
        return Ok(());
    }
    let error = |problem: String, fix: String| OptionError {
        field,
        value: value.clone(),
        problem,
        fix,
    };
    match setsockopt(fd, sockopt::BindToDevice, &OsString::from(target)) {
        Ok(()) => Ok(()),
        Err(Errno::ENODEV) => Err(error(
            "this network namespace has no interface of that name".to_owned(),
            "create the interface before portbinder starts (`ip link` lists them; under \
             systemd order the service After= its .device unit), or fix the name"
                .to_owned(),
        )),
        Err(Errno::EPERM) if made == Made::Inherited => Err(error(
            format!(
                "the inherited socket is bound to the interface `{has}`, and changing that \
                 needs CAP_NET_RAW, which this process does not have"
            ),
            format!(
                "set `bind_to_device = \"{has}\"` for this binding, or change the socket \
                 unit's BindToDevice=, or start portbinder as root"
            ),
        )),
        Err(errno) => Err(fail(errno)),
    }
}

/// SO_MARK needs CAP_NET_ADMIN to be set, to any value: it is set only when it differs.
fn mark(fd: &OwnedFd, want: Option<u32>, made: Made) -> Result<(), OptionError> {
    if want.is_none() && made == Made::Here {
        return Ok(());
    }
    let value = want.map(|m| m.to_string());
    let fail = |errno| failed("mark", value.clone().unwrap_or_default(), errno);
    let has = getsockopt(fd, sockopt::Mark).map_err(fail)?;
    let target = want.unwrap_or(0);
    if has == target {
        return Ok(());
    }
    let missing = "setting SO_MARK needs CAP_NET_ADMIN, which this process does not have";
    match setsockopt(fd, sockopt::Mark, &target) {
        Ok(()) => Ok(()),
        Err(Errno::EPERM) if made == Made::Inherited => Err(OptionError {
            field: "mark",
            value,
            problem: format!("the inherited socket has the mark {has}, and {missing}"),
            fix: format!(
                "set `mark = {has}` for this binding, or {} the socket unit, or {NET_ADMIN_FIX}",
                if target == 0 {
                    "remove Mark= from".to_owned()
                } else {
                    format!("set Mark={target} in")
                }
            ),
        }),
        Err(Errno::EPERM) => Err(OptionError {
            field: "mark",
            value,
            problem: missing.to_owned(),
            fix: NET_ADMIN_FIX.to_owned(),
        }),
        Err(errno) => Err(fail(errno)),
    }
}

/// Which of the two buffers.
#[derive(Clone, Copy)]
enum Buffer {
    Receive,
    Send,
}

/// SO_RCVBUFFORCE / SO_SNDBUFFORCE (CAP_NET_ADMIN, no limit), else SO_RCVBUF / SO_SNDBUF
/// (capped at net.core.rmem_max / wmem_max). The kernel keeps twice the value asked for
/// (for its bookkeeping), which is what getsockopt reads back; anything less means capped.
fn buffer(fd: &OwnedFd, which: Buffer, bytes: u32, made: Made) -> Result<(), OptionError> {
    let (field, sysctl, unit_key) = match which {
        Buffer::Receive => ("receive_buffer", "net.core.rmem_max", "ReceiveBuffer="),
        Buffer::Send => ("send_buffer", "net.core.wmem_max", "SendBuffer="),
    };
    let get = || match which {
        Buffer::Receive => getsockopt(fd, sockopt::RcvBuf),
        Buffer::Send => getsockopt(fd, sockopt::SndBuf),
    };
    let want = bytes as usize * 2;
    if get().is_ok_and(|has| has == want) {
        return Ok(());
    }
    let forced = match which {
        Buffer::Receive => setsockopt(fd, sockopt::RcvBufForce, &(bytes as usize)),
        Buffer::Send => setsockopt(fd, sockopt::SndBufForce, &(bytes as usize)),
    };
    match forced {
        Ok(()) => {}
        Err(Errno::EPERM) => match which {
            Buffer::Receive => setsockopt(fd, sockopt::RcvBuf, &(bytes as usize)),
            Buffer::Send => setsockopt(fd, sockopt::SndBuf, &(bytes as usize)),
        }
        .map_err(|e| failed(field, bytes.to_string(), e))?,
        Err(errno) => return Err(failed(field, bytes.to_string(), errno)),
    }
    let has = get().map_err(|e| failed(field, bytes.to_string(), e))?;
    if has >= want {
        return Ok(());
    }
    Err(OptionError {
        field,
        value: Some(bytes.to_string()),
        problem: format!(
            "the kernel capped it at {} bytes ({sysctl}): a larger buffer needs {} and so \
             CAP_NET_ADMIN, which this process does not have",
            has / 2,
            match which {
                Buffer::Receive => "SO_RCVBUFFORCE",
                Buffer::Send => "SO_SNDBUFFORCE",
            }
        ),
        fix: format!(
            "{NET_ADMIN_FIX}; or raise {sysctl} to at least {bytes}{}",
            if made == Made::Inherited {
                format!("; or give the socket unit {unit_key}{bytes}")
            } else {
                String::new()
            }
        ),
    })
}

/// O_NONBLOCK on the open file description, which every holder shares.
fn nonblocking(fd: &OwnedFd, want: bool) -> Result<(), OptionError> {
    let fail = |e| failed("nonblocking", flag(want), e);
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL).map_err(fail)?);
    let mut wanted = flags;
    wanted.set(OFlag::O_NONBLOCK, want);
    if wanted != flags {
        fcntl(fd, FcntlArg::F_SETFL(wanted)).map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::setup::socket;

    fn addr(proto: Proto, text: &str) -> ListenAddr {
        ListenAddr {
            proto,
            addr: text.parse().unwrap(),
        }
    }

    fn is_nonblocking(fd: &OwnedFd) -> bool {
        OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL).unwrap()).contains(OFlag::O_NONBLOCK)
    }

    #[test]
    fn a_new_socket_gets_every_option_before_bind() {
        let want = addr(Proto::Tcp, "[::]:0");
        let options = SocketOptions {
            nonblocking: true,
            ipv6_only: false,
            free_bind: true,
            keepalive: true,
            keepalive_idle: Some(30),
            defer_accept: Some(3),
            fast_open: Some(16),
            receive_buffer: Some(100_000),
            ..SocketOptions::default()
        };
        let fd = socket::create(&want).unwrap();
        apply(&fd, &want, &options, Made::Here).unwrap();
        socket::bind(&fd, &want, 16).unwrap();
        assert!(is_nonblocking(&fd));
        assert!(!getsockopt(&fd, sockopt::Ipv6V6Only).unwrap());
        assert!(getsockopt(&fd, sockopt::IpFreebind).unwrap());
        assert!(getsockopt(&fd, sockopt::ReuseAddr).unwrap());
        assert!(getsockopt(&fd, sockopt::KeepAlive).unwrap());
        assert_eq!(getsockopt(&fd, sockopt::TcpKeepIdle).unwrap(), 30);
        assert_eq!(getsockopt(&fd, sockopt::RcvBuf).unwrap(), 200_000);
    }

    #[test]
    fn an_inherited_socket_is_put_back_to_the_defaults() {
        let want = addr(Proto::Tcp, "127.0.0.1:0");
        let fd = socket::create(&want).unwrap();
        let custom = SocketOptions {
            nonblocking: true,
            keepalive: true,
            free_bind: true,
            ..SocketOptions::default()
        };
        apply(&fd, &want, &custom, Made::Here).unwrap();
        socket::bind(&fd, &want, 16).unwrap();
        apply(&fd, &want, &SocketOptions::default(), Made::Inherited).unwrap();
        assert!(!is_nonblocking(&fd));
        assert!(!getsockopt(&fd, sockopt::KeepAlive).unwrap());
        assert!(!getsockopt(&fd, sockopt::IpFreebind).unwrap());
    }

    #[test]
    fn an_inherited_socket_of_the_other_v6only_is_refused_with_the_fix() {
        let want = addr(Proto::Udp, "[::]:0");
        let fd = socket::create(&want).unwrap();
        apply(&fd, &want, &SocketOptions::default(), Made::Here).unwrap();
        socket::bind(&fd, &want, 16).unwrap();
        let dual = SocketOptions {
            ipv6_only: false,
            ..SocketOptions::default()
        };
        let error = apply(&fd, &want, &dual, Made::Inherited).unwrap_err();
        assert_eq!(error.field, "ipv6_only");
        let text = error.to_string();
        assert!(
            text.starts_with("`ipv6_only = false`: the inherited socket has IPV6_V6ONLY 1"),
            "{text}"
        );
        assert!(text.contains("fix: set `ipv6_only = true`"), "{text}");
        assert!(text.contains("BindIPv6Only=both"), "{text}");
    }
}
