//! The options a socket keeps once it is bound: IPV6_V6ONLY (chosen before bind(2) or never)
//! and SO_BINDTODEVICE (changed on a bound socket only with CAP_NET_RAW). A new socket gets
//! them; an inherited one must have them already or be refused with the fix.

use std::ffi::OsString;
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::sys::socket::{getsockopt, setsockopt, sockopt};

use super::error::{Made, OptionError, failed, flag, set};

/// IPV6_V6ONLY can only be chosen before bind(2): an inherited socket must have it already.
pub fn ipv6_only(fd: &OwnedFd, want: bool, made: Made) -> Result<(), OptionError> {
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

/// Whether `fd` is bound to the device `want` (`None`: to none) already. A reload must not
/// set it: a socket without a device takes one without privilege, but only CAP_NET_RAW,
/// which the daemon gave up, takes it off again, so a reload that failed later could not put
/// it back. A socket that differs was changed by a privileged holder.
pub fn device_unchanged(fd: &OwnedFd, want: Option<&str>) -> Result<(), OptionError> {
    let field = "bind_to_device";
    let value = want.map(|name| format!("\"{name}\""));
    let has = getsockopt(fd, sockopt::BindToDevice)
        .map_err(|errno| failed(field, value.clone().unwrap_or_default(), errno))?
        .to_string_lossy()
        .into_owned();
    if has == want.unwrap_or("") {
        return Ok(());
    }
    Err(OptionError {
        field,
        value,
        problem: match has.is_empty() {
            true => "the socket is bound to no device now (a privileged holder changed it)".into(),
            false => format!("the socket is bound to `{has}` now (a privileged holder changed it)"),
        } + ", and the daemon could not undo setting it without CAP_NET_RAW",
        fix: "restart portbinder to apply".to_owned(),
    })
}

/// SO_BINDTODEVICE; changing the device of a socket bound to one needs CAP_NET_RAW.
pub fn device(fd: &OwnedFd, want: Option<&str>, made: Made) -> Result<(), OptionError> {
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
