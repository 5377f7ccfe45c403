//! Reload (SIGHUP, `systemctl reload`): the daemon re-reads its configuration and applies
//! every change that needs no privilege; a change that would need one refuses the whole
//! reload, and the old configuration stays in force. systemd hears `RELOADING=1` before the
//! file is read and `READY=1` with a STATUS= that says how it ended.
//!
//! * [`read`]: the file read again, as the run user, inside the sandbox;
//! * [`plan`]: what changed, and whether each change can be applied;
//! * [`apply`]: all of the changes or none, on the sockets and files being served
//!   (with [`files`]: a socket file's mode, a backlog; [`socket_options`]: the options of
//!   bound sockets, and putting them back);
//! * [`outcome`]: how it ended, in the audit log and in STATUS=.

pub mod apply;
pub mod files;
pub mod outcome;
pub mod plan;
pub mod read;
pub mod socket_options;

use crate::config::{Config, ConfigError};
use crate::serve::grant::served::Served;
use crate::serve::notify::Notifier;
use crate::serve::options::{self, Buffer};
use crate::serve::setup::endpoint::Endpoints;
use crate::serve::status::{self, Counters};
use crate::serve::sys;
use apply::Target;
use outcome::Outcome;
use plan::Action;

/// What a reload needs besides the bindings served: how to read the configuration, the
/// configuration in force, and the service manager.
pub struct Reloader<'a> {
    load: &'a dyn Fn() -> Result<Config, ConfigError>,
    config: Config,
    notifier: &'a Notifier,
}

impl<'a> Reloader<'a> {
    /// Reloads with `load`, the function that read `config` (in force now) at start-up.
    pub fn new(
        load: &'a dyn Fn() -> Result<Config, ConfigError>,
        config: Config,
        notifier: &'a Notifier,
    ) -> Reloader<'a> {
        Reloader {
            load,
            config,
            notifier,
        }
    }

    /// How many bindings the configuration in force has.
    pub fn bindings(&self) -> usize {
        self.config.bindings.len()
    }

    /// Reads the configuration again and applies it to `served` and `endpoints` (the serve
    /// loop's, by slot), or refuses it; logs the outcome, tells systemd (its STATUS= with
    /// `counters`), and returns it.
    pub fn reload(
        &mut self,
        served: &mut [Served],
        endpoints: &mut Endpoints<'_>,
        counters: Counters,
    ) -> Outcome {
        self.notifier.reloading(sys::monotonic_usec());
        let outcome = self.run(served, endpoints);
        outcome.log();
        let text = status::reload_text(&outcome.status(), self.bindings(), counters);
        self.notifier.ready(&text);
        outcome
    }

    fn run(&mut self, served: &mut [Served], endpoints: &mut Endpoints<'_>) -> Outcome {
        let new = match read::read(self.load, &self.config) {
            Ok(new) => new,
            Err(error) => return Outcome::Invalid(error),
        };
        let changes = plan::plan(&self.config, &new, &buffer_max);
        if changes.is_empty() {
            return Outcome::Unchanged;
        }
        let refused: Vec<(String, String)> = changes
            .iter()
            .filter_map(|change| match &change.action {
                Action::Refuse(why) => Some((change.what.clone(), why.clone())),
                Action::Apply(_) => None,
            })
            .collect();
        if !refused.is_empty() {
            return Outcome::Refused(refused);
        }
        let target = Target {
            served,
            endpoints,
            owner: self.config.user.uid,
        };
        match apply::apply(&changes, &self.config, &new, target, self.notifier) {
            Ok(()) => {
                self.config = new;
                Outcome::Applied(changes.into_iter().map(|c| c.what).collect())
            }
            Err(failed) => Outcome::Failed(failed),
        }
    }
}

/// The largest buffer of `which` the kernel grants the daemon, which has no CAP_NET_ADMIN.
fn buffer_max(which: Buffer) -> Result<u64, String> {
    options::buffer_max(which).map_err(|errno| {
        format!(
            "a scratch socket to learn {} failed: {errno}",
            which.sysctl()
        )
    })
}
