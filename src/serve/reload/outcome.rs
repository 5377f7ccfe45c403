//! How a reload ended, in the audit log and in systemd's STATUS=: applied (with what
//! changed), unchanged, or refused (the changes that need a restart, one line each; a file
//! that could not be read or is invalid; a step that failed, after what was applied before it
//! was put back). Every refusal leaves the configuration in force untouched.

use crate::serve::audit::Line;
use crate::serve::reload::apply::Failed;
use crate::serve::reload::plan::RESTART;

/// How a reload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file says what is served already.
    Unchanged,
    /// Applied: what changed, as `binding `http`: allow_users, allow_groups`.
    Applied(Vec<String>),
    /// Refused: each change that needs a privilege the daemon gave up, and why.
    Refused(Vec<(String, String)>),
    /// The configuration could not be read, or is invalid: why.
    Invalid(String),
    /// A change could not be applied: the others were put back.
    Failed(Failed),
}

impl Outcome {
    /// Whether the reload was refused: what the file says is not what is served.
    pub fn refused(&self) -> bool {
        !matches!(self, Outcome::Unchanged | Outcome::Applied(_))
    }

    /// The audit lines: one for the outcome, after one per refused change.
    pub fn log(&self) {
        let line = || Line::new("reload").field("signal", "SIGHUP");
        match self {
            Outcome::Unchanged => log::info!("{}", line().field("result", "unchanged")),
            Outcome::Applied(changes) => log::info!(
                "{}",
                line()
                    .field("result", "applied")
                    .field("changes", changes.join("; "))
            ),
            Outcome::Refused(refused) => {
                for (what, why) in refused {
                    log::warn!(
                        "{}",
                        line()
                            .field("result", "refused")
                            .field("change", what)
                            .field("reason", why)
                    );
                }
                let n = refused.len();
                let need = if n == 1 {
                    "change needs"
                } else {
                    "changes need"
                };
                log::warn!(
                    "{}",
                    line().field("result", "refused").field("refused", n).field(
                        "reason",
                        format!("{n} {need} a restart: nothing was changed; {RESTART}")
                    )
                );
            }
            Outcome::Invalid(error) => log::warn!(
                "{}",
                line().field("result", "refused").field("error", error)
            ),
            Outcome::Failed(failed) => {
                log::error!(
                    "{}",
                    line()
                        .field("result", "refused")
                        .field("change", &failed.what)
                        .field("error", &failed.error)
                );
                let mut summary = line()
                    .field("result", "refused")
                    .field("reason", failed.summary());
                if !failed.undo_errors.is_empty() {
                    summary = summary.field("undo_error", failed.undo_errors.join("; "));
                    log::error!("{summary}");
                } else {
                    log::warn!("{summary}");
                }
            }
        }
    }

    /// What STATUS= says first after the reload.
    pub fn status(&self) -> String {
        match self {
            Outcome::Unchanged => "reload: nothing changed".to_owned(),
            Outcome::Applied(changes) => {
                let n = changes.len();
                format!("reload applied {n} change{}", if n == 1 { "" } else { "s" })
            }
            Outcome::Refused(refused) => {
                let what: Vec<&str> = refused.iter().map(|(what, _)| what.as_str()).collect();
                format!("reload refused: {}: {RESTART}", what.join(", "))
            }
            Outcome::Invalid(error) => format!("reload refused: {error}"),
            Outcome::Failed(failed) => format!("reload refused: {}: {}", failed.what, failed.error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(undone: usize, undo_errors: &[&str]) -> Outcome {
        Outcome::Failed(Failed {
            what: "binding `web`: mode".into(),
            error: "cannot change the mode".into(),
            undone,
            undo_errors: undo_errors.iter().map(|&e| e.to_owned()).collect(),
        })
    }

    #[test]
    fn status_says_how_it_ended() {
        let shown: Vec<String> = [
            Outcome::Unchanged,
            Outcome::Applied(vec!["binding `http`: mode".into()]),
            Outcome::Applied(vec!["a".into(), "b".into()]),
            Outcome::Refused(vec![
                ("binding `dns`: added".into(), "why".into()),
                ("binding `http`: mark".into(), "why".into()),
            ]),
            Outcome::Invalid("invalid configuration file /x: y".into()),
            failed(2, &[]),
        ]
        .iter()
        .map(Outcome::status)
        .collect();
        assert_eq!(
            shown,
            [
                "reload: nothing changed",
                "reload applied 1 change",
                "reload applied 2 changes",
                "reload refused: binding `dns`: added, binding `http`: mark: restart to apply",
                "reload refused: invalid configuration file /x: y",
                "reload refused: binding `web`: mode: cannot change the mode",
            ]
        );
    }

    #[test]
    fn a_failed_step_says_what_was_put_back() {
        let summary = |outcome: Outcome| match outcome {
            Outcome::Failed(failed) => failed.summary(),
            _ => unreachable!(),
        };
        assert_eq!(
            summary(failed(0, &[])),
            "binding `web`: mode could not be applied: nothing was changed"
        );
        assert!(summary(failed(1, &[])).contains("the 1 change applied before it was put back"));
        assert!(summary(failed(1, &["x"])).contains("that part may be applied: restart"));
        assert!(failed(0, &[]).refused() && !Outcome::Unchanged.refused());
    }
}
