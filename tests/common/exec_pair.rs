//! `portbinder exec` and the static `portbinder-exec` run side by side on the same command
//! lines, for tests/exec_parity*.rs.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use super::container::static_client;
use super::{EXIT_TIMEOUT, Outcome, Proc, TestEnv, User, binary};

/// Both clients, `portbinder exec` and the static `portbinder-exec`, installed in the test
/// directory.
pub struct Pair {
    dynamic: PathBuf,
    fixed: PathBuf,
}

impl Pair {
    /// Copies both executables into the test directory (other users can run them there).
    pub fn new(env: &TestEnv) -> Pair {
        let dynamic = env.install(&binary(), "portbinder");
        let fixed = env.install(&static_client(), "portbinder-exec");
        Pair { dynamic, fixed }
    }

    /// Runs both as `user` with a clean environment on the same arguments; `setup` can
    /// change each command further (an fd to inherit).
    pub fn run(
        &self,
        env: &TestEnv,
        user: User,
        args: &[OsString],
        setup: impl Fn(&mut Command),
    ) -> [Outcome; 2] {
        let one = |program: &PathBuf, exec: bool| {
            let mut cmd = Command::new(program);
            if exec {
                cmd.arg("exec");
            }
            cmd.args(args);
            env.run_as(&mut cmd, user);
            setup(&mut cmd);
            Proc::spawn(cmd, &program.display().to_string()).finish(EXIT_TIMEOUT)
        };
        [one(&self.dynamic, true), one(&self.fixed, false)]
    }

    /// Runs both and asserts the same code, stdout and stderr; returns the outcome.
    pub fn same(&self, env: &TestEnv, user: User, args: &[&str], code: i32) -> Outcome {
        self.same_with(env, user, args, code, |_| {})
    }

    /// [`Pair::same`] with `setup` applied to each command.
    pub fn same_with(
        &self,
        env: &TestEnv,
        user: User,
        args: &[&str],
        code: i32,
        setup: impl Fn(&mut Command),
    ) -> Outcome {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let [dynamic, fixed] = self.run(env, user, &args, setup);
        assert_eq!(
            dynamic.code,
            Some(code),
            "portbinder exec {args:?}:\n{dynamic}"
        );
        assert_eq!(
            (&fixed.code, &fixed.stdout, &fixed.stderr),
            (&dynamic.code, &dynamic.stdout, &dynamic.stderr),
            "portbinder-exec {args:?} differs from portbinder exec:\n{fixed}\n{dynamic}"
        );
        dynamic
    }
}
