//! A container as the kernel sees it, built from namespaces, since no container engine runs on
//! the test machines: what rootless Podman builds, without Podman. Its owner is an unprivileged
//! account given subordinate ids in /etc/subuid and /etc/subgid ([`SubIds`]); util-linux
//! `unshare` creates user, mount, pid and network namespaces as that owner and maps them with
//! newuidmap/newgidmap (Debian's `uidmap`), container root to the owner and container ids
//! 1… to the subordinate ones, as rootless Podman does; `tests/clients/ctr-init.sh` then makes
//! an empty root filesystem with only the files the test binds into it, and runs the program
//! there as a mapped uid. Also here: the static client under test, and C programs compiled
//! static for such a root filesystem.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{EXIT_TIMEOUT, Proc, TestEnv, User};

/// The container set-up script, written into each test's directory.
const INIT_SH: &str = include_str!("../clients/ctr-init.sh");

/// Serialises the edits of /etc/subuid and /etc/subgid by tests running in parallel.
const SUBID_LOCK: &str = "/tmp/portbinder-tests-subid.lock";

/// `portbinder-exec` built static by scripts/build-static-client (which scripts/test runs
/// before the suite): `PORTBINDER_TEST_STATIC_CLIENT`, else where that script puts it.
pub fn static_client() -> PathBuf {
    let path = std::env::var_os("PORTBINDER_TEST_STATIC_CLIENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/static-client/portbinder-exec")
        });
    assert!(
        path.is_file(),
        "no static client at {}: build it with `bash scripts/build-static-client` (scripts/test does)",
        path.display()
    );
    path
}

/// Compiles `source` (C) with `cc -static` into `name` in the test directory (mode 0755): a
/// program that runs in a root filesystem without any library.
pub fn compile_static(env: &TestEnv, source: &str, name: &str) -> PathBuf {
    let src = env.path().join(format!("{name}.c"));
    fs::write(&src, source).unwrap();
    let out = env.path().join(name);
    let outcome = Proc::spawn(
        {
            let mut cc = Command::new("cc");
            cc.args(["-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
                .arg(&out)
                .arg(&src);
            cc
        },
        "cc -static",
    )
    .finish(EXIT_TIMEOUT);
    outcome.assert_success();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o755)).unwrap();
    out
}

/// Subordinate ids allotted to a user for the life of this value: one line `USER:FIRST:COUNT`
/// added to /etc/subuid and to /etc/subgid (what `usermod --add-subuids` writes), removed on
/// drop. Edits are made under a lock and by rename, so parallel tests and newuidmap never see
/// a half-written file; each test uses ranges of its own.
pub struct SubIds {
    line: String,
    /// The first subordinate id.
    pub first: u32,
    /// How many.
    pub count: u32,
}

impl SubIds {
    /// Allots `count` ids from `first` to `user`.
    pub fn allot(user: &str, first: u32, count: u32) -> SubIds {
        let line = format!("{user}:{first}:{count}");
        edit_subid_files(|lines| lines.push(line.clone()));
        SubIds { line, first, count }
    }

    /// The range to write in `allow_users`, as the README says to read it from the line:
    /// `alice:100000:65536` is `100000-165535`.
    pub fn range(&self) -> String {
        format!("{}-{}", self.first, self.first + self.count - 1)
    }

    /// The id that the daemon sees for the container's id `inner` (1 or more).
    pub fn outer(&self, inner: u32) -> u32 {
        assert!(
            (1..=self.count).contains(&inner),
            "container id {inner} is not mapped"
        );
        self.first + inner - 1
    }
}

impl Drop for SubIds {
    fn drop(&mut self) {
        edit_subid_files(|lines| {
            if let Some(i) = lines.iter().position(|l| *l == self.line) {
                lines.remove(i);
            }
        });
    }
}

fn edit_subid_files(mut edit: impl FnMut(&mut Vec<String>)) {
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(SUBID_LOCK)
        .unwrap();
    // SAFETY: flock takes a descriptor that `lock` owns for the whole call.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    for path in ["/etc/subuid", "/etc/subgid"] {
        let text = fs::read_to_string(path).unwrap_or_default();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        edit(&mut lines);
        let tmp = format!("{path}.portbinder-tests");
        let mut file = fs::File::create(&tmp).unwrap();
        for line in &lines {
            writeln!(file, "{line}").unwrap();
        }
        file.set_permissions(fs::Permissions::from_mode(0o644))
            .unwrap();
        fs::rename(&tmp, path).unwrap();
    }
    drop(lock);
}

/// A container: its owner, its id mapping, and what its empty root filesystem will hold.
pub struct Container {
    owner: User,
    first: u32,
    count: u32,
    root: PathBuf,
    init: PathBuf,
    setup: Vec<OsString>,
}

impl Container {
    /// A container named `name` (its root is the empty directory `<test dir>/<name>`) that
    /// `owner` runs, with container ids 1… mapped to `subids` and container root to `owner`.
    pub fn new(env: &TestEnv, name: &str, owner: User, subids: &SubIds) -> Container {
        let root = env.path().join(name);
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let init = env.path().join("ctr-init.sh");
        fs::write(&init, INIT_SH).unwrap();
        fs::set_permissions(&init, fs::Permissions::from_mode(0o644)).unwrap();
        Container {
            owner,
            first: subids.first,
            count: subids.count,
            root,
            init,
            setup: Vec::new(),
        }
    }

    /// Bind-mounts the host file `host` read-only at `inside`.
    pub fn bind_ro(&mut self, host: &Path, inside: &str) -> &mut Container {
        self.setup
            .extend(["--ro".into(), host.into(), inside.into()]);
        self
    }

    /// Bind-mounts the host file `host` (a socket, say) at `inside`.
    pub fn bind(&mut self, host: &Path, inside: &str) -> &mut Container {
        self.setup
            .extend(["--rw".into(), host.into(), inside.into()]);
        self
    }

    /// Mounts /proc (of the container's pid namespace).
    pub fn with_proc(&mut self) -> &mut Container {
        self.setup.push("--proc".into());
        self
    }

    /// The command that creates the namespaces and runs `argv` inside as container `uid:gid`.
    pub fn command(&self, uid: u32, gid: u32, argv: &[&str]) -> Command {
        let map = format!("{},1,{}", self.first, self.count);
        let mut cmd = Command::new("unshare");
        cmd.args(["--map-root-user"])
            .arg(format!("--map-users={map}"))
            .arg(format!("--map-groups={map}"))
            .args(["--mount", "--pid", "--net", "--fork", "--kill-child", "--"])
            .arg("/bin/sh")
            .arg(&self.init)
            .arg(&self.root)
            .args(&self.setup)
            .arg("--")
            .arg(uid.to_string())
            .arg(gid.to_string())
            .args(argv)
            .current_dir("/")
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        self.owner.apply(&mut cmd);
        cmd
    }

    /// Spawns [`Container::command`].
    pub fn spawn(&self, uid: u32, gid: u32, argv: &[&str]) -> Proc {
        let name = format!("container as {uid}:{gid}: {}", argv.join(" "));
        Proc::spawn(self.command(uid, gid, argv), &name)
    }
}
