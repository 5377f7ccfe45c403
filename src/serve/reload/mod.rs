//! Reload (SIGHUP, `systemctl reload`): the daemon re-reads its configuration and applies
//! every change that needs no privilege; a change that would need one refuses the whole
//! reload, and the old configuration stays in force.
//!
//! * [`plan`]: what changed, and whether each change can be applied.

pub mod plan;
