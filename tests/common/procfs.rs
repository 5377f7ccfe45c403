//! What `/proc` tells about a process: its open descriptors, for leak checks and failure
//! messages.

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
