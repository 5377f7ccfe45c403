//! One test's world ([`TestEnv`]): its network namespace, a directory that the other users
//! can traverse, the configuration written there, and the ways to start the daemon and the
//! clients against it.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::{
    Daemon, EXIT_TIMEOUT, Grants, NOBODY, NetNs, Probe, Proc, User, binary, built, serve_under,
};

/// The client script, embedded so that it is written into each test's directory, where the
/// unprivileged client users can read it wherever the repository itself lives.
const CLIENT_PY: &str = include_str!("../clients/client.py");

/// One test's world: its network namespace and a temporary directory (mode 0755, so that
/// clients running as other users can traverse it) holding the config file, the client script
/// and the socket directory `<dir>/run`.
pub struct TestEnv {
    _netns: NetNs,
    dir: TempDir,
    client_script: PathBuf,
}

/// The capabilities the shipped unit gives the daemon (systemd/portbinder.service), for
/// [`TestEnv::serve_as_nobody_with_caps`].
pub const UNIT_CAPS: &str = "+net_bind_service,+chown";

impl TestEnv {
    /// Enters a new network namespace and creates the test directory.
    pub fn new() -> TestEnv {
        let netns = NetNs::enter();
        let dir = tempfile::Builder::new()
            .prefix("pb-")
            .tempdir_in("/tmp")
            .expect("create test directory");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let client_script = dir.path().join("client.py");
        fs::write(&client_script, CLIENT_PY).unwrap();
        fs::set_permissions(&client_script, fs::Permissions::from_mode(0o644)).unwrap();
        TestEnv {
            _netns: netns,
            dir,
            client_script,
        }
    }

    /// The test directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The socket directory that [`TestEnv::globals`] configures (not created by the harness).
    pub fn socket_dir(&self) -> PathBuf {
        self.path().join("run")
    }

    /// The Unix socket path of binding `name`.
    pub fn socket(&self, name: &str) -> PathBuf {
        self.socket_dir().join(format!("{name}.sock"))
    }

    /// The `.sock` files present in the socket directory (none if it does not exist).
    pub fn socket_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(self.socket_dir()) else {
            return Vec::new();
        };
        entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension() == Some(OsStr::new("sock")))
            .collect()
    }

    /// Asserts that the socket directory holds no `.sock` file (after a failed start or a
    /// clean stop).
    pub fn assert_no_socket_files(&self) {
        let left = self.socket_files();
        assert!(left.is_empty(), "socket files left behind: {left:?}");
    }

    /// Creates the socket directory owned by nobody (the run user) with mode 0755, as systemd's
    /// RuntimeDirectory= does for `User=nobody`.
    pub fn create_socket_dir_for_nobody(&self) {
        let dir = self.socket_dir();
        fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(NOBODY.uid), Some(NOBODY.gid)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// `portbinder serve` as systemd starts it with `User=nobody` and
    /// `AmbientCapabilities=CAPS` (`caps` as setpriv takes them, e.g.
    /// `+net_bind_service,+chown`): as nobody with only those capabilities, inheritable and
    /// ambient, in the socket directory that RuntimeDirectory= creates for nobody (made here
    /// if missing), with a world-readable configuration of `bindings`, whose path it returns.
    pub fn serve_as_nobody_with_caps(&self, caps: &str, bindings: &str) -> (Command, PathBuf) {
        self.serve_as_nobody_with_caps_under(&[], caps, bindings)
    }

    /// [`TestEnv::serve_as_nobody_with_caps`] started through `wrapper` (a program and its
    /// arguments, such as [`HIDE_PROC_SYS`], that ends by exec'ing the rest of its arguments:
    /// setpriv, then the daemon), so that the pid is still the daemon's.
    ///
    /// [`HIDE_PROC_SYS`]: super::HIDE_PROC_SYS
    pub fn serve_as_nobody_with_caps_under(
        &self,
        wrapper: &[&str],
        caps: &str,
        bindings: &str,
    ) -> (Command, PathBuf) {
        if !self.socket_dir().exists() {
            self.create_socket_dir_for_nobody();
        }
        let config = self.config(bindings);
        fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
        let mut setpriv = match wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg("setpriv");
                cmd
            }
            None => Command::new("setpriv"),
        };
        setpriv.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            &format!("--inh-caps={caps}"),
            &format!("--ambient-caps={caps}"),
            "--",
        ]);
        (serve_under(setpriv, &config), config)
    }

    /// The global part of a config file: run as `nobody`, sockets in [`TestEnv::socket_dir`],
    /// log to syslog with facility authpriv.
    pub fn globals(&self) -> String {
        format!(
            "user = \"nobody\"\nsocket_dir = \"{}\"\nlog = \"syslog\"\nfacility = \"authpriv\"\n",
            self.socket_dir().display()
        )
    }

    /// Writes `contents` to `portbinder.toml` in the test directory (mode 0600) and returns
    /// its path.
    pub fn write_config(&self, contents: &str) -> PathBuf {
        let path = self.path().join("portbinder.toml");
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        file.write_all(contents.as_bytes()).unwrap();
        path
    }

    /// Writes a config file made of [`TestEnv::globals`] followed by `bindings` (TOML text).
    pub fn config(&self, bindings: &str) -> PathBuf {
        self.write_config(&format!("{}\n{bindings}", self.globals()))
    }

    /// Starts `portbinder serve --config <config>` and waits until it is ready.
    pub fn serve(&self, config: &Path) -> Daemon {
        Daemon::start(&["--config".as_ref(), config.as_os_str()])
    }

    /// `python3 SCRIPT args...` as `user`, with a clean environment (PATH and LANG only) and
    /// the test directory as working directory, in the test's network namespace.
    pub fn python_command<S: AsRef<OsStr>>(
        &self,
        user: User,
        script: &Path,
        args: &[S],
    ) -> Command {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(script).args(args);
        self.run_as(&mut cmd, user);
        cmd
    }

    /// Spawns `client.py args...` as `user`, in the test's network namespace.
    pub fn client<S: AsRef<OsStr>>(&self, user: User, args: &[S]) -> Proc {
        Proc::spawn(
            self.python_command(user, &self.client_script, args),
            &format!("client.py as {}", user.name),
        )
    }

    /// client.py `mode` (`serve-http`, `udp-echo`) as `user` on binding `name`, once it says
    /// it serves; it answers until killed (when the [`Proc`] is dropped).
    pub fn serving_app(&self, user: User, mode: &str, name: &str) -> Proc {
        let socket = self.socket(name);
        let mut app = self.client(
            user,
            &[mode.as_ref(), socket.as_os_str(), "1000000".as_ref()],
        );
        app.expect_line("ready", EXIT_TIMEOUT);
        app
    }

    /// Runs the `probe` client as `user` against `socket` and returns what it received.
    pub fn probe(&self, user: User, socket: &Path) -> Probe {
        self.client(user, &["probe".as_ref(), socket.as_os_str()])
            .finish(EXIT_TIMEOUT)
            .json()
    }

    /// Runs the `grants` client as `user`: `count` fetches from `socket` in a row, tallied.
    pub fn fetch_many(&self, user: User, socket: &Path, count: u32) -> Grants {
        let count = count.to_string();
        self.client(
            user,
            &[OsStr::new("grants"), socket.as_os_str(), count.as_ref()],
        )
        .finish(EXIT_TIMEOUT)
        .json()
    }

    /// Copies `src` into the test directory as `name`, mode 0755, so other users can run it
    /// whatever the permissions of the build tree (CI's clone may sit under /root).
    pub fn install(&self, src: &Path, name: &str) -> PathBuf {
        let dst = self.path().join(name);
        fs::copy(src, &dst).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).unwrap();
        dst
    }

    /// `portbinder <args...>` run as `user` from a copy of the binary in the test directory,
    /// with a clean environment (PATH and LANG only) and the test directory as working directory.
    pub fn portbinder_as<S: AsRef<OsStr>>(&self, user: User, args: &[S]) -> Command {
        let copy = self.path().join("portbinder");
        if !copy.exists() {
            self.install(&binary(), "portbinder");
        }
        let mut cmd = Command::new(copy);
        cmd.args(args);
        self.run_as(&mut cmd, user);
        cmd
    }

    /// Makes `cmd` run as `user` the way an unprivileged program is started: a clean
    /// environment (PATH and LANG only), in the test directory.
    pub fn run_as(&self, cmd: &mut Command, user: User) {
        cmd.current_dir(self.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C.UTF-8");
        user.apply(cmd);
    }

    /// `portbinder exec --socket-dir <socket dir> NAMES -- PROGRAM...` as `user` (see
    /// [`TestEnv::portbinder_as`]).
    pub fn exec_as<S: AsRef<OsStr>>(&self, user: User, names: &str, program: &[S]) -> Command {
        let socket_dir = self.socket_dir();
        let mut args: Vec<&OsStr> = vec![
            "exec".as_ref(),
            "--socket-dir".as_ref(),
            socket_dir.as_os_str(),
            names.as_ref(),
            "--".as_ref(),
        ];
        args.extend(program.iter().map(AsRef::as_ref));
        self.portbinder_as(user, &args)
    }

    /// The LD_PRELOAD shim, copied into the test directory.
    pub fn preload_lib(&self) -> PathBuf {
        self.install(
            &built("libportbinder_preload.so"),
            "libportbinder_preload.so",
        )
    }
}
