//! The command line (clap). Kept in the library so that man pages and completions can be
//! generated from the same definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{
    self, Config, ConfigError, Facility, LogTarget, Origin, Raw, RawBinding, Trust,
};

/// portbinder: bind privileged ports once, drop every privilege, and hand the sockets to
/// the unprivileged programs the configuration allows.
#[derive(Debug, Parser)]
#[command(name = "portbinder", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bind the configured sockets, drop privileges and serve grants until SIGTERM; SIGHUP
    /// reloads the configuration (what needs no privilege is applied, anything else refused).
    Serve(ConfigArgs),
    /// Validate the configuration (syntax, names, addresses, users, groups, duplicates)
    /// without binding or creating anything.
    Check(ConfigArgs),
    /// Fetch bindings and exec PROGRAM with them at fds 3, 4, … (systemd's LISTEN_FDS
    /// protocol), or with --preload for a program that just calls bind(2).
    Exec(ExecArgs),
    /// List the bindings in the socket directory and whether you may fetch each.
    List(ListArgs),
}

/// `portbinder exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Directory of the daemon's Unix sockets.
    #[arg(long, value_name = "DIR", default_value = config::DEFAULT_SOCKET_DIR)]
    pub socket_dir: PathBuf,
    /// Hand the sockets to an LD_PRELOAD shim that serves the program's own bind(2)
    /// calls, instead of LISTEN_FDS.
    #[arg(long)]
    pub preload: bool,
    /// The shim library (default: beside this executable, else /usr/lib/portbinder).
    #[arg(long, value_name = "PATH", requires = "preload")]
    pub preload_lib: Option<PathBuf>,
    /// With --preload, also serve a bind of a specific address (127.0.0.1:80) with the
    /// binding's wildcard socket of the same port (0.0.0.0:80), which listens on every
    /// interface. Without it only a bind of exactly a granted address is served, and any
    /// other goes to the real bind(2). Sets PORTBINDER_PRELOAD_ANY_ADDRESS=1, which the shim
    /// also reads from the environment.
    #[arg(long, requires = "preload")]
    pub preload_any_address: bool,
    /// Binding names, comma- or space-separated; their sockets are placed in this order.
    #[arg(required = true, value_name = "NAME[,NAME...]", value_delimiter = ',')]
    pub names: Vec<String>,
    /// The program to run, and its arguments.
    #[arg(last = true, required = true, value_name = "PROGRAM [ARGS...]")]
    pub command: Vec<std::ffi::OsString>,
}

/// `portbinder list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Directory of the daemon's Unix sockets.
    #[arg(long, value_name = "DIR", default_value = config::DEFAULT_SOCKET_DIR)]
    pub socket_dir: PathBuf,
}

/// Where the configuration comes from: a file, or flags for a one-off run.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Configuration file.
    #[arg(long, short = 'c', value_name = "PATH", conflicts_with = "bind")]
    pub config: Option<PathBuf>,
    /// User to run as after the privilege drop (overrides the file).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Directory of the per-binding Unix sockets (overrides the file).
    #[arg(long, value_name = "DIR")]
    pub socket_dir: Option<PathBuf>,
    /// Where log lines go (overrides the file).
    #[arg(long, value_enum)]
    pub log: Option<LogTarget>,
    /// Syslog facility (overrides the file).
    #[arg(long, value_enum)]
    pub facility: Option<Facility>,
    /// A binding without a file: NAME=ADDR[,ADDR...], e.g. `http=0.0.0.0:80,[::]:80`.
    /// Repeatable; needs --group.
    #[arg(long, value_name = "NAME=ADDRS", requires = "group")]
    pub bind: Vec<String>,
    /// Group of the --bind sockets (members may fetch them).
    #[arg(long, value_name = "GROUP", requires = "bind")]
    pub group: Option<String>,
    /// Mode of the --bind sockets, octal.
    #[arg(long, value_name = "MODE", requires = "bind")]
    pub mode: Option<String>,
    /// listen(2) backlog of the --bind TCP sockets.
    #[arg(long, value_name = "N", requires = "bind")]
    pub backlog: Option<u32>,
    /// A user allowed to fetch the --bind sockets. Repeatable.
    #[arg(long, value_name = "USER", requires = "bind")]
    pub allow_user: Vec<String>,
    /// A group allowed to fetch the --bind sockets. Repeatable.
    #[arg(long, value_name = "GROUP", requires = "bind")]
    pub allow_group: Vec<String>,
    /// Make the --bind sockets non-blocking (O_NONBLOCK, shared by every holder), as
    /// event-loop servers such as Tornado need; `nonblocking = true` in a file.
    #[arg(long, requires = "bind")]
    pub nonblocking: bool,
}

impl ConfigArgs {
    /// Reads (or builds from flags), overrides and validates the configuration.
    pub fn load(&self, trust: Trust) -> Result<Config, ConfigError> {
        let (mut raw, origin) = if self.bind.is_empty() {
            let path = self
                .config
                .clone()
                .unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG));
            (config::read_file(&path, trust)?, Origin::File(path))
        } else {
            (self.flag_bindings()?, Origin::Flags)
        };
        raw.user = self.user.clone().or(raw.user);
        raw.socket_dir = self.socket_dir.clone().or(raw.socket_dir);
        raw.log = self.log.or(raw.log);
        raw.facility = self.facility.or(raw.facility);
        config::validate(raw, origin)
    }

    fn flag_bindings(&self) -> Result<Raw, ConfigError> {
        let mut raw = Raw::default();
        for spec in &self.bind {
            let Some((name, addrs)) = spec.split_once('=') else {
                return Err(ConfigError::Invalid {
                    origin: Origin::Flags,
                    problems: vec![format!(
                        "--bind `{spec}`: write NAME=ADDR[,ADDR...], e.g. http=0.0.0.0:80,[::]:80"
                    )],
                });
            };
            let binding = RawBinding {
                listen: addrs.split(',').map(str::to_owned).collect(),
                backlog: self.backlog,
                group: self.group.clone().unwrap_or_default(),
                mode: self.mode.clone().map(config::Mode::Text),
                allow_users: self.allow_user.clone(),
                allow_groups: self.allow_group.clone(),
                nonblocking: self.nonblocking.then_some(true),
                ..RawBinding::default()
            };
            if raw.binding.insert(name.to_owned(), binding).is_some() {
                return Err(ConfigError::Invalid {
                    origin: Origin::Flags,
                    problems: vec![format!("--bind: binding `{name}` is given twice")],
                });
            }
        }
        Ok(raw)
    }
}
