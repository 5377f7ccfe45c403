//! What `/proc` tells about a process: its open descriptors (leak checks and failure messages)
//! and the sockets among them with their file status flags, its status fields (credentials,
//! memory, the sandbox), its CPU time and its limits.

use std::collections::HashMap;
use std::fs;

/// The fd numbers open in process `pid`.
pub fn proc_fds(pid: u32) -> Vec<i32> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// `fd -> link target` for every fd open in process `pid`, for failure messages.
pub fn proc_fd_links(pid: u32) -> Vec<(i32, String)> {
    let mut links: Vec<(i32, String)> = proc_fds(pid)
        .into_iter()
        .filter_map(|fd| {
            let target = fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
            Some((fd, target.display().to_string()))
        })
        .collect();
    links.sort();
    links
}

/// The fields of `/proc/PID/status`, values trimmed.
pub fn proc_status(pid: u32) -> HashMap<String, String> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// CPU time process `pid` used so far (utime + stime, in clock ticks, from `/proc/PID/stat`).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after `(comm)`.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// How process `pid` ended, if it has and is not reaped yet (a zombie): the `exit_code`
/// field of `/proc/PID/stat` as waitpid(2) reports it, described ("was killed by signal 31").
pub fn zombie_exit(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // The state is field 3 of the whole line, exit_code field 52 (1 and 50 after `(comm)`).
    if fields.first() != Some(&"Z") {
        return None;
    }
    let status: i32 = fields.get(49)?.parse().ok()?;
    Some(match status & 0x7f {
        0 => format!("exited with code {}", status >> 8),
        signal => format!("was killed by signal {signal}"),
    })
}

/// The soft and hard RLIMIT_NOFILE of process `pid`, as `/proc/PID/limits` shows them.
pub fn nofile_limits(pid: u32) -> (String, String) {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files in /proc/PID/limits");
    let values: Vec<&str> = line.split_whitespace().collect();
    (values[3].to_owned(), values[4].to_owned())
}

/// The inode numbers of the sockets process `pid` holds (`/proc/PID/fd/N -> socket:[INODE]`).
pub fn socket_inodes(pid: u32) -> Vec<u64> {
    proc_fd_links(pid)
        .into_iter()
        .filter_map(|(_, link)| {
            link.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// The file status flags (`flags:` of `/proc/PID/fdinfo/FD`, O_NONBLOCK among them) of the
/// open file description through which process `pid` holds socket `inode`; `None` if it
/// holds no such socket.
pub fn open_flags(pid: u32, inode: u64) -> Option<i32> {
    let wanted = format!("socket:[{inode}]");
    let (fd, _) = proc_fd_links(pid)
        .into_iter()
        .find(|(_, link)| *link == wanted)?;
    let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let octal = info.lines().find_map(|l| l.strip_prefix("flags:"))?.trim();
    i32::from_str_radix(octal, 8).ok()
}

/// Whether process `pid` holds socket `inode` in non-blocking mode (panics if it does not
/// hold it at all).
pub fn holds_nonblocking(pid: u32, inode: u64) -> bool {
    let flags = open_flags(pid, inode)
        .unwrap_or_else(|| panic!("process {pid} holds no socket with inode {inode}"));
    flags & libc::O_NONBLOCK != 0
}
